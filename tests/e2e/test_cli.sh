#!/bin/sh
# End to end through the real binary: ferry run with a control socket,
# status (human and JSON), pause/resume, guest self-check, quit; and every
# bad flag answered with one clear sentence and a non-zero exit.
set -u
FERRY=${FERRY:?set FERRY to the ferry binary}
dir=$(mktemp -d)
sock=$dir/vm.sock
pid=
failures=0
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Every call is bounded: a hang fails the check instead of the suite.
run_ferry() { timeout 60 "$FERRY" "$@"; }

# expect_error "words in the message" ferry-args...: non-zero exit, one line on stderr.
expect_error() {
	words=$1; shift
	timeout 60 "$FERRY" "$@" >/dev/null 2>"$dir/err"
	rc=$?
	[ $rc -ne 0 ] || fail "'ferry $*' exited 0"
	grep -q -- "$words" "$dir/err" || fail "'ferry $*' said: $(cat "$dir/err"), expected '$words'"
}

# expect_usage "words" ferry-args...: a usage error: exit 2, the words, a pointer to --help.
expect_usage() {
	words=$1; shift
	timeout 60 "$FERRY" "$@" >/dev/null 2>"$dir/err"
	rc=$?
	[ $rc -eq 2 ] || fail "'ferry $*' exited $rc, not 2 (usage)"
	grep -q -- "$words" "$dir/err" || fail "'ferry $*' said: $(cat "$dir/err"), expected '$words'"
	grep -q -- "--help" "$dir/err" || fail "'ferry $*' did not point at --help"
}

expect_error "--mem 'lots' is not a size" run --mem lots
expect_error "--vcpus '0' is not a number from 1 to 64" run --vcpus 0
expect_error "--vcpus 'two'" run --vcpus two
expect_error "unknown option '--bogus'" run --bogus
expect_error "--mem needs a value" run --mem
expect_error "--mem-backend 'disk' is not anon, memfd or hugetlb" run --mem-backend disk
expect_error "--dirty-backend 'log'" run --dirty-backend log
expect_error "--dirty-ring-size '1000' is not a power of two" run --dirty-ring-size 1000
expect_error "workload 'spin' is unknown" run --workload spin
expect_error "working set of 2048 MiB does not fit" run --mem 1G --workload dirty:wss=2G
expect_error "guest memory must be a multiple of 2 MiB" run --mem 3M
expect_error "--control NAME|PATH is required" status
expect_error "cannot reach a ferry at $dir/none" status --control "$dir/none"
expect_error "--seconds '0' is not a whole number from 1 to 60" dirtyrate --control "$dir/none" --seconds 0
expect_error "--link RATE is required" predict --control "$dir/none"
expect_error "--link 'fast' is not a rate" predict --control "$dir/none" --link fast
expect_error "unknown command 'launch'" launch
# Every command refuses what it does not understand, before doing anything.
expect_usage "unexpected argument '256M'" migrate --control "$dir/none" --to unix:/x --xbzrle 256M
expect_usage "unexpected argument 'extra'" status --control "$dir/none" extra
expect_usage "unexpected argument 'extra'" run --mem 64M extra
expect_usage "unexpected argument 'x'" dirtyrate --control "$dir/none" x
expect_usage "unexpected argument 'x'" predict --control "$dir/none" --link 1Gbit x
expect_usage "--compress 'lz5' is not none, lz4" predict --control "$dir/none" --link 1Gbit --compress lz5
expect_usage "--channels '17' is not 0 to 16" predict --control "$dir/none" --link 1Gbit --channels 17
expect_usage "unexpected argument 'b'" ctl --control "$dir/none" query-status '{}' b
# Times are bounded, so that none overflows.
expect_usage "--io-timeout-ms '99999999999999' is not a whole number from 100 to 3600000" \
	migrate --control "$dir/none" --to unix:/x --io-timeout-ms 99999999999999
expect_usage "--timeout '99999999999999999999' is not a whole number" \
	migrate --control "$dir/none" --to unix:/x --timeout 99999999999999999999
expect_usage "--downtime-ms '0' is not a whole number from 1" migrate --control "$dir/none" --to unix:/x --downtime-ms 0
expect_usage "--channels '17' is not a whole number from 0 to 16" migrate --control "$dir/none" --to unix:/x --channels 17
expect_usage "compression 'gzip' is unknown" migrate --control "$dir/none" --to unix:/x --compress gzip
expect_usage "converge strategy 'bogus' is unknown" migrate --control "$dir/none" --to unix:/x --converge bogus
expect_usage "--throttle-max '100' is not a whole number from 1 to 99" migrate --control "$dir/none" --to unix:/x --throttle-max 100
expect_error "fd:0 is not a socket" run --incoming fd:0 </dev/null
expect_usage "--io-timeout-ms goes with --incoming" run --io-timeout-ms 5000
expect_usage "--io-timeout-ms '50' is not a whole number from 100" run --incoming unix:/x --io-timeout-ms 50
expect_usage "--local never leaves this host (and a memory's fd cannot go inside TLS), so --tls-creds does not apply" \
	migrate --control "$dir/none" --to unix:/x --local --tls-creds "$dir"
# The operator's verbs refuse what they do not take.
expect_usage "--watch takes only --control" migrate --control "$dir/none" --watch --to unix:/x
expect_usage "nothing to set" migrate-set --control "$dir/none"
expect_usage "--to, --resume, --watch and --json are ferry migrate's" migrate-set --control "$dir/none" --to unix:/x --max-bandwidth 1M
expect_usage "--max-bandwidth 'fast' is not a rate" migrate-set --control "$dir/none" --max-bandwidth fast
expect_usage "unknown option '--now'" migrate-cancel --control "$dir/none" --now
expect_usage "--control NAME|PATH is required" migrate-cancel
expect_error "cannot reach a ferry at $dir/none" migrate-set --control "$dir/none" --max-bandwidth 1M
FERRY_RUN_DIR=$dir/run expect_error "cannot reach a ferry at $dir/run/web1.sock" status --control web1
for cmd in list migrate-set migrate-cancel; do
	run_ferry $cmd --help | grep -q "Usage: ferry $cmd" || fail "ferry $cmd --help"
done
run_ferry --help | grep -q "Usage: ferry COMMAND" || fail "ferry --help"
run_ferry run --help | grep -q "Workload SPEC" || fail "ferry run --help"
expect_usage "--host-reserve 'most' is not a size" run --host-reserve most
# A host short of memory: memory made ready ahead (no KVM needed) stops where
# the host would give up its reserve, with a sentence, and nothing listens.
# The reserve is all but 512 MiB of what this host has now; the guest 2 GiB.
avail_mib=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
if [ "$avail_mib" -gt 1024 ]; then
	expect_error "the host ran short of memory with" \
		run --incoming "unix:$dir/short.sock" --mem 2G --prealloc --host-reserve "$((avail_mib - 512))M"
	[ -e "$dir/short.sock" ] && fail "a destination short of memory listened"
else
	echo "only $avail_mib MiB available: the short host's check is skipped"
fi

if [ ! -c /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not available; the running part is skipped"
	[ $failures -eq 0 ] || exit 1
	exit 0
fi

(umask 0; "$FERRY" run --mem 128M --vcpus 2 --control "$sock" \
	--workload dirty:wss=64M,rate=20M,write=byte 2>"$dir/run.log") &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
# The control socket is the owner's alone, whatever the umask; a peer of
# another user is turned away even if it reaches the socket.
[ "$(stat -c %a "$sock")" = 600 ] || fail "control socket mode $(stat -c %a "$sock"), not 600"
if command -v setpriv >/dev/null; then
	chmod 755 "$dir"; chmod 666 "$sock"
	setpriv --reuid 65534 --regid 65534 --clear-groups "$FERRY" status --control "$sock" 2>"$dir/err" &&
		fail "another user could use the control socket"
	grep -q "permission denied" "$dir/err" || fail "another user: $(cat "$dir/err")"
	chmod 600 "$sock"; chmod 700 "$dir"
fi
# A peer that hangs up must not kill ferry: SIGPIPE is ignored.
runpid=$(pgrep -f "ferry run --mem 128M --vcpus 2 --control $sock" | head -1)
[ $(( 0x$(awk '/^SigIgn/ {print $2}' "/proc/$runpid/status") >> 12 & 1 )) = 1 ] || fail "SIGPIPE is not ignored"
# Measurements are checked against the guest's own counters over the same
# time, or against a paused guest, never against the rate asked: a busy host
# may run the guest slower.
guest_written() { run_ferry status --control "$sock" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['guest']['pages_written'])"; }
for _ in $(seq 100); do # the guest has filled its working set once
	[ "$(run_ferry status --control "$sock" --json | python3 -c "import json,sys; print(min(v['passes'] for v in json.load(sys.stdin)['guest']['per_vcpu']))")" -ge 1 ] && break
	sleep 0.1
done
run_ferry status --control "$sock" >"$dir/status" || fail "status"
grep -q "^VM        running, 2 vCPU(s), 128.0 MiB" "$dir/status" || fail "status text: $(cat "$dir/status")"
run_ferry status --control "$sock" --json >"$dir/status.json" || fail "status --json"
python3 - "$dir/status.json" <<'PY' || fail "status JSON content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == "running" and s["vcpus"] == 2, s
assert s["guest"]["pages_written"] > 0 and s["guest"]["verify_errors"] == 0, s
PY
# The sampled write rate is the last second's: it shows a running guest's
# writes, and within a few samples of a pause it says none (it once froze).
sampled_rate() { run_ferry status --control "$sock" --json | python3 -c "import json,sys; print(int(json.load(sys.stdin)['dirty_rate_pps'] > 0))"; }
until_rate() { # 1 or 0, within 10 s
	for _ in $(seq 100); do [ "$(sampled_rate)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
until_rate 1 || fail "no sampled write rate for a running guest after 10 s"
run_ferry ctl --control "$sock" stop >/dev/null || fail "stop"
until_rate 0 || fail "the sampled write rate of a paused guest is not 0 after 10 s"
run_ferry ctl --control "$sock" cont >/dev/null || fail "cont"
until_rate 1 || fail "no sampled write rate after the guest resumed"
w0=$(guest_written); t0=$(date +%s.%N)
run_ferry dirtyrate --control "$sock" --seconds 2 --json >"$dir/rate.json" || fail "dirtyrate"
w1=$(guest_written); t1=$(date +%s.%N)
python3 - "$dir/rate.json" "$w0" "$w1" "$t0" "$t1" <<'PY' || fail "dirtyrate: $(cat "$dir/rate.json")"
import json, sys
r = json.load(open(sys.argv[1]))
w0, w1, t0, t1 = map(float, sys.argv[2:])
# Random writes over 16384 pages, about 500 per 100 ms window: nearly every
# write is a distinct page, so the rate is the guest's write rate; over 2 s
# the working set is at least the distinct pages of one window.
real = (w1 - w0) / (t1 - t0)
assert 0.6 * real < r["dirty_rate_pps"] < 1.5 * real, (r["dirty_rate_pps"], real)
assert r["dirty_rate_pps"] * 0.1 < r["working_set_pages"] < 16384 + 64, r
assert r["mem_pages"] == 32768 and r["zero_pages"] > 10000, r
assert "vcpu_rate_pps" not in r  # bitmap tracking: no per-vCPU counts
# 20 MiB/s of byte writes between two vCPUs leaves each asleep most of the time.
assert len(r["vcpu_busy"]) == 2 and all(0 <= b < 0.9 for b in r["vcpu_busy"]), r
assert 0 < r["dirty_rate_p10_pps"] <= r["dirty_rate_p90_pps"] <= r["peak_rate_pps"], r
assert set(r["codecs"]) == {"lz4", "zstd"}, r  # the guest's pages shrink
assert all(0 < c["ratio"] < 1 and c["mbps"] > 0 for c in r["codecs"].values()), r
assert r["copy_mbps"] > 0 and r["verify_ms"] > 0 and r["sync_ms"] > 0, r
assert r["copy_parallel_mbps"] > 0 and r["copy_parallel_senders"] >= 1, r
assert r["xbzrle_samples"] > 100 and r["xbzrle_bytes_per_page"] < 200, r  # byte writes
assert r["xbzrle_bytes_per_page"] <= r["line_bytes_per_page"] < 1024, r  # a line or two each
PY
run_ferry predict --control "$sock" --link 1Gbit --seconds 1 --json >"$dir/predict.json" || fail "predict"
python3 - "$dir/predict.json" <<'PY' || fail "predict: $(cat "$dir/predict.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["vcpus_alike"] == [0, 1], j["vcpus_alike"]  # the bitmap cannot tell who wrote
p = {x["name"]: x for x in j["predictions"]}
assert set(p) == {"none", "xbzrle", "throttle", "sdps", "auto"}, p.keys()
assert all(x["converges"] and x["downtime_ms"] <= 300 for x in p.values()), p
assert p["none"]["throttle_pct_max"] == 0 and p["none"]["total_ms"] > 100, p["none"]
for x in p.values():  # each with its range, and its rounds down to the paused one
    lo, hi = x["total_ms_range"]
    assert lo <= x["total_ms"] and (hi is None or x["total_ms"] <= hi), x
    assert len(x["round_log"]) == x["rounds"] and x["round_log"][-1]["dirtied"] == 0, x
PY
run_ferry predict --control "$sock" --link 1Gbit --seconds 1 >"$dir/predict.txt" || fail "predict"
grep -q "even share of the rate" "$dir/predict.txt" && grep -q "dirty-limit" "$dir/predict.txt" ||
	fail "predict text: $(cat "$dir/predict.txt")"
run_ferry predict --control "$sock" --link 1Gbit --seconds 1 --compress lz4 --channels 2 --json >"$dir/predict.json" ||
	fail "predict --compress"
python3 -c "import json,sys; p = json.load(open(sys.argv[1]))['predictions']; assert all(x['codec'] == 'lz4' for x in p), p" \
	"$dir/predict.json" || fail "predict --compress lz4: $(cat "$dir/predict.json")"
# A limit far above any host's hashing time (a slow host's too): the plan
# converges, and its pause must hold verify's cost.
run_ferry predict --control "$sock" --link 1Gbit --seconds 1 --verify --downtime-ms 60000 --json >"$dir/predict.json" ||
	fail "predict --verify"
python3 - "$dir/predict.json" <<'PY' || fail "predict --verify: $(cat "$dir/predict.json")"
import json, sys
j = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in j["predictions"]}
assert p["none"]["downtime_ms"] >= j["measured"]["verify_ms"] > 0, (p["none"], j["measured"])
PY
expect_error "dirty-limit needs each vCPU's dirty rate" migrate --control "$sock" --to unix:/nonexistent --converge dirty-limit
expect_usage "--xbzrle=tiny is not a cache size" migrate --control "$sock" --to unix:/nonexistent --xbzrle=tiny
# The control socket checks what the CLI checks, for other clients.
expect_error "calc-dirty-rate takes no argument 'bogus'" ctl --control "$sock" calc-dirty-rate '{"bogus": 1}'
expect_error "cont takes no argument 'now'" ctl --control "$sock" cont '{"now": true}'
expect_error "query-forecast needs \"link-bps\"" ctl --control "$sock" query-forecast
expect_error "link-bps must be a whole number of bytes per second" ctl --control "$sock" query-forecast '{"link-bps": -1}'
expect_error "no parameter 'link' here" ctl --control "$sock" query-forecast '{"link": 1}'
expect_error "channels must be a number of data channels" ctl --control "$sock" query-forecast '{"link-bps": 1000, "channels": 99}'
expect_error "io-timeout-ms must be 100 to 3600000 milliseconds" ctl --control "$sock" migrate '{"uri": "unix:/x", "io-timeout-ms": 99999999999}'
expect_error "throttle-max-pct must be a percentage from 1 to 99" ctl --control "$sock" migrate '{"uri": "unix:/x", "throttle-max": 100}'
# fd:N must be a connected stream socket; anything else is left alone.
expect_error "fd:2 is not a socket" migrate --control "$sock" --to fd:2
expect_error "fd:999 is not an open descriptor" migrate --control "$sock" --to fd:999
run_ferry ctl --control "$sock" query-status >/dev/null || fail "query-status after bad fd: migrations"
run_ferry ctl --control "$sock" stop | grep -q pause_us || fail "stop"
run_ferry status --control "$sock" | grep -q "^VM        paused" || fail "not paused"
run_ferry ctl --control "$sock" cont >/dev/null || fail "cont"
run_ferry ctl --control "$sock" guest-verify | grep -q '"result":"ok"' || fail "guest-verify"
expect_error "unknown command 'frobnicate'" ctl --control "$sock" frobnicate
expect_error "another ferry" run --mem 64M --control "$sock"
run_ferry ctl --control "$sock" quit >/dev/null || fail "quit"
# Bounded: a ferry that does not end after quit is a failure, not a hang.
for _ in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -0 $pid 2>/dev/null && { fail "ferry run still runs 10 s after quit"; kill -9 $pid; }
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || fail "ferry run exited $rc after quit"
[ ! -e "$sock" ] || fail "control socket left behind"
# (Also proves that fd:2, the log, survived the refused fd:2 migration.)
grep -q "quit requested" "$dir/run.log" || fail "no stop reason in the log"

# The control thread serves every client: a long guest-verify answers later
# while another client is served, and a client that never reads its answers
# is dropped rather than stalling the others.
"$FERRY" run --mem 512M --control "$sock" --workload idle 2>"$dir/run2.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
timeout 60 python3 - "$sock" <<'PY' || fail "control clients: see above"
import json, socket, sys, time
def client():
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
    f = s.makefile("rw"); f.readline(); return s, f
def ask(f, cmd):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
# Wait for the guest to fill its memory, so that checking it takes a while.
s, f = client()
while True:
    ask(f, "query-status")
    st = json.loads(f.readline())["return"]
    if min(v["passes"] for v in st["guest"]["per_vcpu"]) >= 1: break
    time.sleep(0.1)
a, fa = client()
ask(fa, "guest-verify")
b, fb = client()
ask(fb, "query-status")
assert "return" in json.loads(fb.readline()), "query-status failed"
a.setblocking(False)
try:
    early = a.recv(1)
except BlockingIOError:
    early = b""
assert not early, "guest-verify answered before another client's query-status"
a.setblocking(True)
r = json.loads(fa.readline())
assert r["return"]["result"] == "ok", r
# A client that asks and never reads: its answers pile up, it is dropped.
c, fc = client()
for _ in range(3000):
    try:
        ask(fc, "query-status")
    except OSError:
        break
ask(fb, "query-status")
assert "return" in json.loads(fb.readline()), "a client that does not read stalled the others"
PY
grep -q "dropped a client that did not read" "$dir/run2.log" || fail "the client that did not read was not dropped"
timeout 10 "$FERRY" ctl --control "$sock" quit >/dev/null || fail "quit"
wait $pid
pid=

[ $failures -eq 0 ] && echo "cli: all checks passed"
[ $failures -eq 0 ]
