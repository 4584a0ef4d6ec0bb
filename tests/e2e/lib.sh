# Helpers for end-to-end tests that drive real ferry processes. Source it
# after setting FERRY. Every process started here is killed on exit.
#
# Every wait is bounded. A step that overruns fails with where it was and
# the thread backtraces of the ferry processes; a watchdog does the same for
# the whole test before meson's own timeout would kill it silently.
set -u
: "${FERRY:?set FERRY to the ferry binary}"
TMP=$(mktemp -d /tmp/ferry-e2e.XXXXXX)
PIDS=""
FAILURES=0
WATCHDOG_S=${WATCHDOG_S:-280}

# The thread backtraces of every process started here that still runs.
backtraces() {
	for _t_pid in $PIDS; do
		kill -0 "$_t_pid" 2>/dev/null || continue
		echo "== backtraces of $_t_pid: $(tr '\0' ' ' <"/proc/$_t_pid/cmdline" 2>/dev/null | cut -c1-160)"
		if command -v gdb >/dev/null; then
			timeout 30 gdb -p "$_t_pid" -batch -nx -ex "thread apply all bt" 2>/dev/null |
				grep -E "^(Thread|#)" | head -200
		else
			for _t in /proc/"$_t_pid"/task/*; do echo "$(cat "$_t/comm"): $(cat "$_t/wchan")"; done
		fi
	done
}

cleanup() {
	# SIGKILL: a TERM that lands while the watchdog is being forked runs
	# the trap it inherits and is lost, and it then outlives the test.
	[ -n "${WATCHDOG:-}" ] && kill -9 "$WATCHDOG" 2>/dev/null
	for _p in $PIDS; do kill -9 "$_p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$FAILURES" -eq 0 ]; then rm -rf "$TMP"; else echo "logs kept in $TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' TERM

fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
note() { echo "-- $*"; echo "$*" >"$TMP/step"; }

# (Helpers' own variables start with _: sh has no locals, and a test's
# variables must survive the helpers it calls.)

# The whole test, bounded: say where it was, show the stacks, end it.
(
	# One second at a time: a watchdog that outlives the test must not
	# hold its output open (meson waits for that to close).
	for _ in $(seq "$WATCHDOG_S"); do
		kill -0 $$ 2>/dev/null || exit 0
		sleep 1
	done
	echo "FAIL: the test is still running after $WATCHDOG_S s, at: $(cat "$TMP/step" 2>/dev/null)"
	backtraces
	kill -TERM $$
	pkill -TERM -P $$ # the step it waits for, so that the trap runs now
) &
WATCHDOG=$!

# bounded SECS WHAT CMD...: run CMD for at most SECS; on overrun, fail
# saying WHAT was awaited, with the backtraces. Returns CMD's status.
bounded() {
	_b_secs=$1 _b_what=$2; shift 2
	timeout "$_b_secs" "$@"
	_b_rc=$?
	if [ $_b_rc -eq 124 ]; then
		fail "timed out after $_b_secs s waiting for $_b_what (step: $(cat "$TMP/step" 2>/dev/null))"
		backtraces
	fi
	return $_b_rc
}

need_kvm() {
	if [ ! -c /dev/kvm ]; then
		echo "SKIP: /dev/kvm is not available"
		exit 77
	fi
}

wait_socket() {
	bounded 10 "a control socket at $1" sh -c "until [ -S '$1' ]; do sleep 0.05; done"
}

# vm NAME ferry-run-args...: start a VM (log in $TMP/NAME.log), wait for its socket.
vm() {
	_v_name=$1; shift
	rm -f "$TMP/$_v_name.sock" # a killed predecessor leaves its socket file
	"$FERRY" run --control "$TMP/$_v_name.sock" "$@" 2>"$TMP/$_v_name.log" &
	PIDS="$PIDS $!"
	eval "PID_$_v_name=$!"
	wait_socket "$TMP/$_v_name.sock"
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
	_v_ns=$1 _v_name=$2; shift 2
	rm -f "$TMP/$_v_name.sock"
	ip netns exec "$NAME-$_v_ns" "$FERRY" run --control "$TMP/$_v_name.sock" "$@" 2>"$TMP/$_v_name.log" &
	PIDS="$PIDS $!"
	eval "PID_$_v_name=$!"
	wait_socket "$TMP/$_v_name.sock"
}

# port N (0-11): a TCP port of this test's own, below the kernel's ephemeral
# range (32768 up here): an outgoing connection's TIME_WAIT on a port in that
# range would make listening there fail.
port() { echo $((20000 + ($$ % 1000) * 12 + $1)); }

sock() { echo "$TMP/$1.sock"; }
pid_of() { eval "echo \$PID_$1"; }
ctl() { _c_name=$1; shift; bounded 130 "ferry ctl $*" "$FERRY" ctl --control "$TMP/$_c_name.sock" "$@"; }

# json_field FILE-or-'-' PYTHON-EXPR: evaluate EXPR with the JSON as j.
json_field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1]) if sys.argv[1]!='-' else sys.stdin); print($2)" "$1"; }

status_field() {
	bounded 20 "ferry status of $1" "$FERRY" status --control "$TMP/$1.sock" --json | json_field - "$2"
}

# The guest's own full check of every page must pass. A destination has
# the guest once it answered RESUMED and heard its vCPUs beat (up to 1 s):
# wait for it to say so.
expect_guest_ok() {
	poll "$1" query-status "'guest' in r" "the guest to run" || return
	_g_out=$(ctl "$1" guest-verify 2>&1)
	echo "$_g_out" | grep -q '"result":"ok"' || fail "$1: guest self-check: $_g_out"
	[ "$(status_field "$1" "j['guest']['verify_errors']")" = 0 ] || fail "$1: guest saw stale pages"
}

# The guest must be running and making progress (a page written, within 10 s).
expect_progress() {
	poll "$1" query-status "'guest' in r" "the guest to run" || return
	[ "$(status_field "$1" "j['status']")" = running ] || fail "$1 is not running: $(status_field "$1" "j['status']")"
	_p_a=$(status_field "$1" "j['guest']['pages_written']")
	poll "$1" query-status "r['guest']['pages_written'] > ${_p_a:-0}" "the guest's progress" 10 ||
		fail "$1: the guest made no progress in 10 s (from $_p_a pages written)"
}

# poll SRC QUERY PYTHON-CONDITION WHAT [SECS]: query SRC's control socket
# quickly until the condition holds of its answer r; fails after SECS (30),
# or at once if the migration ended otherwise, saying what it saw.
poll() {
	python3 - "$(sock "$1")" "$2" "$3" "${5:-30}" <<'PY' || { fail "waiting for $4 on $1"; backtraces; return 1; }
import json, socket, sys, time
path, query, cond, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
deadline, r = time.time() + secs, None
while time.time() < deadline:
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path); f = s.makefile("rw")
    f.readline(); f.write('{"execute":"%s"}\n' % query); f.flush()
    r = json.loads(f.readline())["return"]; s.close()
    if eval(cond):
        sys.exit(0)
    if query == "query-migrate" and r["status"] in ("completed", "failed", "cancelled", "unknown", "lost"):
        print("the migration ended as", r["status"], r.get("reason")); sys.exit(1)
    time.sleep(0.002)
print("after %.0f s it was still: %s" % (secs, json.dumps(r)[:400]))
sys.exit(1)
PY
}

# wait_status SRC STATUS [MIN_ROUNDS]: the migration reaches STATUS (and rounds).
wait_status() {
	poll "$1" query-migrate "r['status'] == '$2' and r['rounds'] >= ${3:-0}" "migration status $2"
}

# wait_incoming DST [PHASE]: the destination is in PHASE (waiting).
wait_incoming() {
	poll "$1" query-status "r.get('incoming', {}).get('phase') == '${2:-waiting}'" "incoming phase ${2:-waiting}"
}

# start_proxy PORT TARGET ARGS...: tests/e2e/proxy.c, the man in the middle,
# from tcp:127.0.0.1:PORT to TARGET, misbehaving as ARGS say; pid in PROXY_PID.
start_proxy() {
	_x_port=$1 _x_target=$2; shift 2
	PROXIES=$((${PROXIES:-0} + 1))
	"$PROXY" "tcp:127.0.0.1:$_x_port" "$_x_target" "$@" >"$TMP/proxy$PROXIES.out" \
		2>"$TMP/proxy$PROXIES.log" &
	PIDS="$PIDS $!"
	PROXY_PID=$!
	bounded 10 "the proxy to listen" sh -c "until grep -q ready '$TMP/proxy$PROXIES.out'; do sleep 0.05; done"
}

# stop_proxy: it is gone (and its port free) when this returns.
stop_proxy() {
	kill -9 "$PROXY_PID" 2>/dev/null
	wait "$PROXY_PID" 2>/dev/null
}

# kill_vm NAME: SIGKILL, and wait until it is gone (its ports are free).
kill_vm() {
	_k_pid=$(pid_of "$1")
	kill -9 "$_k_pid" 2>/dev/null
	wait "$_k_pid" 2>/dev/null
}

# migrate SRC URI ferry-migrate-args...: report JSON in $TMP/report.json; returns its exit code.
migrate() {
	_m_src=$1 _m_uri=$2; shift 2
	timeout 90 "$FERRY" migrate --control "$TMP/$_m_src.sock" --to "$_m_uri" --json "$@" >"$TMP/report.json" 2>"$TMP/migrate.err"
	_m_rc=$?
	if [ $_m_rc -eq 124 ]; then
		fail "migrate hung; source says: $(timeout 5 "$FERRY" ctl --control "$TMP/$_m_src.sock" query-migrate 2>&1)"
		grep -v "^\[" "$TMP/migrate.err" | tail -3
		backtraces
	fi
	return $_m_rc
}

report() { json_field "$TMP/report.json" "$1"; }

# ferry run ARGS... must exit 2 with WHAT in its sentence.
usage_refused() { # WHAT ARGS...
	_u_what=$1; shift
	bounded 10 "ferry run $*" "$FERRY" run "$@" >/dev/null 2>"$TMP/usage.err"
	[ $? -eq 2 ] || fail "$_u_what: not refused with exit 2"
	grep -q -- "$_u_what" "$TMP/usage.err" || fail "$_u_what: said $(cat "$TMP/usage.err")"
}

finish() {
	# A sanitizer's report in any ferry's log is a failure, fatal or not.
	for _f in "$TMP"/*.log; do
		grep -q -E "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:" "$_f" 2>/dev/null &&
			fail "a sanitizer reported in $_f: $(grep -m1 -E "SUMMARY|WARNING|runtime error" "$_f")"
	done
	if [ "$FAILURES" -eq 0 ]; then
		echo "$1: all checks passed"
		exit 0
	fi
	echo "$1: $FAILURES check(s) failed"
	for _f in "$TMP"/*.log; do echo "== $_f"; tail -5 "$_f"; done
	exit 1
}
