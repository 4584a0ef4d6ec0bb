# Helpers for end-to-end tests that drive real ferry processes. Source it
# after setting FERRY. Every process started here is killed on exit.
set -u
: "${FERRY:?set FERRY to the ferry binary}"
TMP=$(mktemp -d /tmp/ferry-e2e.XXXXXX)
PIDS=""
FAILURES=0

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$FAILURES" -eq 0 ]; then rm -rf "$TMP"; else echo "logs kept in $TMP"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
note() { echo "-- $*"; }

need_kvm() {
	if [ ! -c /dev/kvm ]; then
		echo "SKIP: /dev/kvm is not available"
		exit 77
	fi
}

wait_socket() {
	for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	fail "no control socket at $1"
	return 1
}

# vm NAME ferry-run-args...: start a VM (log in $TMP/NAME.log), wait for its socket.
vm() {
	name=$1; shift
	rm -f "$TMP/$name.sock" # a killed predecessor leaves its socket file
	"$FERRY" run --control "$TMP/$name.sock" "$@" 2>"$TMP/$name.log" &
	PIDS="$PIDS $!"
	eval "PID_$name=$!"
	wait_socket "$TMP/$name.sock"
}

# need_link RATE: namespaces $NAME-src and $NAME-dst joined by a veth shaped
# to RATE (scripts/link.sh), removed on exit; skips without root, ip or tc.
LINK="$(dirname "$0")/../../scripts/link.sh"
NAME=fe$$
need_link() {
	if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
		echo "SKIP: needs root, ip and tc for network namespaces"
		exit 77
	fi
	"$LINK" up "$NAME" "$1" || { echo "SKIP: cannot create network namespaces here"; exit 77; }
	trap '"$LINK" down "$NAME"; cleanup' EXIT
}

# vm_in NS NAME ferry-run-args...: like vm, in namespace NS (src or dst).
vm_in() {
	ns=$1; name=$2; shift 2
	rm -f "$TMP/$name.sock"
	ip netns exec "$NAME-$ns" "$FERRY" run --control "$TMP/$name.sock" "$@" 2>"$TMP/$name.log" &
	PIDS="$PIDS $!"
	eval "PID_$name=$!"
	wait_socket "$TMP/$name.sock"
}

sock() { echo "$TMP/$1.sock"; }
pid_of() { eval "echo \$PID_$1"; }
# Bounded, so that a hang fails with a message instead of the suite's timeout.
ctl() { name=$1; shift; timeout 130 "$FERRY" ctl --control "$TMP/$name.sock" "$@"; }

# json_field FILE-or-'-' PYTHON-EXPR: evaluate EXPR with the JSON as j.
json_field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1]) if sys.argv[1]!='-' else sys.stdin); print($2)" "$1"; }

status_field() { "$FERRY" status --control "$TMP/$1.sock" --json | json_field - "$2"; }

# The guest's own full check of every page must pass.
expect_guest_ok() {
	out=$(ctl "$1" guest-verify 2>&1)
	echo "$out" | grep -q '"result":"ok"' || fail "$1: guest self-check: $out"
	[ "$(status_field "$1" "j['guest']['verify_errors']")" = 0 ] || fail "$1: guest saw stale pages"
}

# The guest must be running and making progress.
expect_progress() {
	[ "$(status_field "$1" "j['status']")" = running ] || fail "$1 is not running: $(status_field "$1" "j['status']")"
	a=$(status_field "$1" "j['guest']['pages_written']")
	sleep 0.5
	b=$(status_field "$1" "j['guest']['pages_written']")
	[ "$b" -gt "$a" ] || fail "$1: the guest made no progress ($a -> $b)"
}

# wait_status SRC STATUS [MIN_ROUNDS]: poll query-migrate quickly.
wait_status() {
	python3 - "$(sock "$1")" "$2" "${3:-0}" <<'PY'
import json, socket, sys, time
path, want, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.time() + 60
while time.time() < deadline:
    s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rw")
    f.readline(); f.write('{"execute":"query-migrate"}\n'); f.flush()
    r = json.loads(f.readline())["return"]; s.close()
    if r["status"] == want and r["rounds"] >= rounds:
        sys.exit(0)
    if r["status"] in ("completed", "failed", "cancelled", "unknown"):
        print("migration ended as", r["status"], r.get("reason")); sys.exit(1)
    time.sleep(0.002)
sys.exit(1)
PY
}

# kill_vm NAME: SIGKILL, and wait until it is gone (its ports are free).
kill_vm() {
	p=$(pid_of "$1")
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

# migrate SRC URI ferry-migrate-args...: report JSON in $TMP/report.json; returns its exit code.
migrate() {
	src=$1 uri=$2; shift 2
	timeout 90 "$FERRY" migrate --control "$TMP/$src.sock" --to "$uri" --json "$@" >"$TMP/report.json" 2>"$TMP/migrate.err"
	rc=$?
	if [ $rc -eq 124 ]; then
		fail "migrate hung; source says: $(timeout 5 "$FERRY" ctl --control "$TMP/$src.sock" query-migrate 2>&1)"
		grep -v "^\[" "$TMP/migrate.err" | tail -3
	fi
	return $rc
}

report() { json_field "$TMP/report.json" "$1"; }

finish() {
	if [ "$FAILURES" -eq 0 ]; then
		echo "$1: all checks passed"
		exit 0
	fi
	echo "$1: $FAILURES check(s) failed"
	for f in "$TMP"/*.log; do echo "== $f"; tail -5 "$f"; done
	exit 1
}
