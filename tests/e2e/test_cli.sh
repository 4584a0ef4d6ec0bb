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

# expect_error "words in the message" ferry-args...: non-zero exit, one line on stderr.
expect_error() {
	words=$1; shift
	"$FERRY" "$@" >/dev/null 2>"$dir/err"
	rc=$?
	[ $rc -ne 0 ] || fail "'ferry $*' exited 0"
	grep -q -- "$words" "$dir/err" || fail "'ferry $*' said: $(cat "$dir/err"), expected '$words'"
}

expect_error "--mem 'lots' is not a size" run --mem lots
expect_error "--vcpus '0' is not a number from 1 to 64" run --vcpus 0
expect_error "--vcpus 'two'" run --vcpus two
expect_error "unknown option '--bogus'" run --bogus
expect_error "--mem needs a value" run --mem
expect_error "--mem-backend 'disk' is not anon or memfd" run --mem-backend disk
expect_error "--dirty-backend 'log'" run --dirty-backend log
expect_error "--dirty-ring-size '1000' is not a power of two" run --dirty-ring-size 1000
expect_error "workload 'spin' is unknown" run --workload spin
expect_error "working set of 2048 MiB does not fit" run --mem 1G --workload dirty:wss=2G
expect_error "guest memory must be a multiple of 2 MiB" run --mem 3M
expect_error "--control PATH is required" status
expect_error "cannot reach a ferry at $dir/none" status --control "$dir/none"
expect_error "--seconds '0' is not a whole number from 1 to 60" dirtyrate --control "$dir/none" --seconds 0
expect_error "--link RATE is required" predict --control "$dir/none"
expect_error "--link 'fast' is not a rate" predict --control "$dir/none" --link fast
expect_error "unknown command 'launch'" launch
"$FERRY" --help | grep -q "Usage: ferry COMMAND" || fail "ferry --help"
"$FERRY" run --help | grep -q "Workload SPEC" || fail "ferry run --help"

if [ ! -c /dev/kvm ]; then
	echo "SKIP: /dev/kvm is not available; the running part is skipped"
	[ $failures -eq 0 ] || exit 1
	exit 0
fi

"$FERRY" run --mem 128M --vcpus 2 --control "$sock" \
	--workload dirty:wss=64M,rate=20M,write=byte 2>"$dir/run.log" &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
sleep 1.5
"$FERRY" status --control "$sock" >"$dir/status" || fail "status"
grep -q "^VM        running, 2 vCPU(s), 128.0 MiB" "$dir/status" || fail "status text: $(cat "$dir/status")"
"$FERRY" status --control "$sock" --json >"$dir/status.json" || fail "status --json"
python3 - "$dir/status.json" <<'PY' || fail "status JSON content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["status"] == "running" and s["vcpus"] == 2, s
assert s["guest"]["pages_written"] > 0 and s["guest"]["verify_errors"] == 0, s
# rate=20M is 5120 pages/s; the sampled rate should be near it
assert 3000 < s["dirty_rate_pps"] < 7000, s["dirty_rate_pps"]
PY
"$FERRY" dirtyrate --control "$sock" --seconds 2 --json >"$dir/rate.json" || fail "dirtyrate"
python3 - "$dir/rate.json" <<'PY' || fail "dirtyrate: $(cat "$dir/rate.json")"
import json, sys
r = json.load(open(sys.argv[1]))
# 5120 random writes/s over 16384 pages: about 5000 distinct pages per second
# in 100 ms windows, and most of the 64 MiB working set over 2 s.
assert 3000 < r["dirty_rate_pps"] < 7000, r
assert 5000 < r["working_set_pages"] < 16384 + 64, r
assert r["mem_pages"] == 32768 and r["zero_pages"] > 10000, r
assert "vcpu_rate_pps" not in r  # bitmap tracking: no per-vCPU counts
assert r["xbzrle_samples"] > 100 and r["xbzrle_bytes_per_page"] < 200, r  # byte writes
PY
"$FERRY" predict --control "$sock" --link 1Gbit --seconds 1 --json >"$dir/predict.json" || fail "predict"
python3 - "$dir/predict.json" <<'PY' || fail "predict: $(cat "$dir/predict.json")"
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["predictions"]}
assert set(p) == {"none", "xbzrle", "throttle", "sdps", "auto"}, p.keys()
assert all(x["converges"] and x["downtime_ms"] <= 300 for x in p.values()), p
assert p["none"]["throttle_pct_max"] == 0 and p["none"]["total_ms"] > 100, p["none"]
PY
"$FERRY" predict --control "$sock" --link 1Gbit --seconds 1 | grep -q "dirty-limit needs per-vCPU rates" || fail "predict text"
expect_error "converge strategy 'bogus' is unknown" migrate --control "$sock" --to unix:/nonexistent --converge bogus
expect_error "dirty-limit needs each vCPU's dirty rate" migrate --control "$sock" --to unix:/nonexistent --converge dirty-limit
expect_error "--xbzrle=tiny is not a cache size" migrate --control "$sock" --to unix:/nonexistent --xbzrle=tiny
expect_error "throttle-max must be a percentage from 1 to 99" migrate --control "$sock" --to unix:/nonexistent --throttle-max 100
"$FERRY" ctl --control "$sock" stop | grep -q pause_us || fail "stop"
"$FERRY" status --control "$sock" | grep -q "^VM        paused" || fail "not paused"
"$FERRY" ctl --control "$sock" cont >/dev/null || fail "cont"
"$FERRY" ctl --control "$sock" guest-verify | grep -q '"result":"ok"' || fail "guest-verify"
expect_error "unknown command 'frobnicate'" ctl --control "$sock" frobnicate
expect_error "another ferry" run --mem 64M --control "$sock"
"$FERRY" ctl --control "$sock" quit >/dev/null || fail "quit"
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || fail "ferry run exited $rc after quit"
[ ! -e "$sock" ] || fail "control socket left behind"
grep -q "quit requested" "$dir/run.log" || fail "no stop reason in the log"

[ $failures -eq 0 ] && echo "cli: all checks passed"
[ $failures -eq 0 ]
