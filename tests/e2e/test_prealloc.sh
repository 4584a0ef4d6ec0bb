#!/bin/sh
# A destination whose memory is ready before the source connects:
# - ferry run --incoming --mem SIZE --prealloc faults SIZE in before it
#   listens and says how long that took; the guest lands in that memory.
# - A failed attempt gives the memory back zeroed: the next guest, mostly
#   zero pages that the stream does not write, verifies page by page.
# - A guest larger than SIZE is refused with a sentence.
# - migrate-incoming-prealloc does the same on a running destination.
# - hugetlb: an empty pool is a sentence naming vm.nr_hugepages; with a
#   pool (reserved here, given back on exit) the guest migrates into huge
#   pages and away from them again.
# - The options that make no sense together are refused (exit 2).
. "$(dirname "$0")/lib.sh"
need_kvm
: "${PROXY:?set PROXY to the proxy binary}"
PORT=$(port 0)
COMMIT=7

# (The idle guests here write nothing once filled: running is what they do.)
expect_running() { [ "$(status_field "$1" "j['status']")" = running ] || fail "$1 is not running"; }

# memory_field DST EXPR: of the destination's query-status incoming.memory.
memory_field() { status_field "$1" "j['incoming']['memory']$2"; }

note "options that make no sense together"
usage_refused "needs --mem SIZE" --incoming "unix:$TMP/x.sock" --prealloc
usage_refused "goes with --incoming" --background-prefault off
usage_refused "is not anon, memfd or hugetlb" --mem-backend huge
usage_refused "nothing to do with --prealloc" --incoming "unix:$TMP/x.sock" --mem 64M --prealloc \
	--background-prefault on

note "--prealloc: the memory is faulted in before the destination listens"
vm dst --incoming "unix:$TMP/in.sock" --mem 128M --prealloc --io-timeout-ms 60000
[ "$(memory_field dst "['state']")" = ready ] || fail "memory: $(status_field dst "j['incoming']")"
[ "$(memory_field dst "['bytes']")" = 134217728 ] || fail "ready bytes: $(memory_field dst "")"
python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 0)" "$(memory_field dst "['populate_ms']")" ||
	fail "no populate time: $(memory_field dst "")"
grep -q "populated 128 MiB of guest memory in" "$TMP/dst.log" || fail "the log does not say how long it took"
bounded 20 "ferry status" "$FERRY" status --control "$(sock dst)" | grep -q "^Memory    128.0 MiB anon, ready, faulted in in" ||
	fail "ferry status does not show the ready memory"
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$PID_dst/status")
[ "$RSS_KB" -ge $((128 * 1024)) ] || fail "only $RSS_KB KiB resident: the memory was not faulted in"

note "a failed attempt gives the memory back zeroed"
vm a --mem 64M --workload idle:data=random
poll a query-status "r['guest']['per_vcpu'][0]['passes'] >= 1" "a's fill" 60
start_proxy "$PORT" "unix:$TMP/in.sock" --hold $COMMIT
migrate a "tcp:127.0.0.1:$PORT" --io-timeout-ms 30000 &
MIG=$!
wait_incoming dst loaded
ctl dst migrate-incoming-cancel >/dev/null || fail "the fence was refused"
wait $MIG
[ "$(report "j['status']")" = failed ] || fail "fenced attempt: $(report "j['status']")"
stop_proxy
wait_incoming dst waiting
[ "$(memory_field dst "['state']")" = ready ] || fail "after the failure: $(memory_field dst "")"
vm b --mem 64M --workload idle:data=zero
poll b query-status "r['guest']['per_vcpu'][0]['passes'] >= 1" "b's fill" 60
migrate b "unix:$TMP/in.sock" --verify || fail "into reused memory: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
[ "$(report "j['verify']")" = ok ] || fail "the reused memory kept the failed guest's pages: $(report "j.get('reason')")"
grep -q "go into memory made ready before it came" "$TMP/dst.log" || fail "the guest did not use the ready memory"
[ "$(memory_field dst "['state']")" = kept ] || fail "after completion: $(memory_field dst "")"
[ "$(memory_field dst "['bytes']")" = 67108864 ] || fail "the guest keeps $(memory_field dst "['bytes']") bytes"
expect_running dst
expect_guest_ok dst
ctl dst quit >/dev/null

note "a guest larger than the ready memory is refused"
vm dst --incoming "unix:$TMP/in.sock" --mem 32M --prealloc
migrate a "unix:$TMP/in.sock" && fail "a 64 MiB guest went into 32 MiB"
report "j['reason']" | grep -q "exceeds this destination's limit of 32" || fail "reason: $(report "j['reason']")"
expect_running a
ctl dst quit >/dev/null

note "migrate-incoming-prealloc on a destination started without --prealloc"
vm dst --incoming "unix:$TMP/in.sock"
[ "$(memory_field dst "['state']")" = none ] || fail "memory before: $(memory_field dst "")"
ctl dst migrate-incoming-prealloc '{"mem": "64M", "bytes": 1}' >"$TMP/prealloc.out" 2>&1 &&
	fail "an unknown argument was accepted"
grep -q "takes mem and backend, not 'bytes'" "$TMP/prealloc.out" || fail "said: $(cat "$TMP/prealloc.out")"
ctl dst migrate-incoming-prealloc '{"mem": "32M"}' >"$TMP/prealloc.out" || fail "prealloc: $(cat "$TMP/prealloc.out")"
[ "$(json_field "$TMP/prealloc.out" "j['state']")" = ready ] || fail "answer: $(cat "$TMP/prealloc.out")"
# Too small for this guest: it comes into fresh memory, and the ready memory goes back.
migrate a "unix:$TMP/in.sock" --verify || fail "past small ready memory: $(cat "$TMP/migrate.err")"
grep -q "go into memory made ready before it came" "$TMP/dst.log" && fail "a 64 MiB guest went into 32 MiB"
[ "$(memory_field dst "['state']")" = none ] || fail "unused ready memory kept: $(memory_field dst "")"
vm dst2 --incoming "unix:$TMP/in2.sock"
ctl dst2 migrate-incoming-prealloc '{"mem": "64M"}' >"$TMP/prealloc.out" || fail "prealloc: $(cat "$TMP/prealloc.out")"
migrate dst "unix:$TMP/in2.sock" --verify || fail "into ready memory: $(cat "$TMP/migrate.err")"
grep -q "go into memory made ready before it came" "$TMP/dst2.log" || fail "the guest did not use the ready memory"
[ "$(memory_field dst2 "['state']")" = kept ] || fail "after completion: $(memory_field dst2 "")"
expect_guest_ok dst2
ctl dst2 quit >/dev/null
ctl dst quit >/dev/null

note "hugetlb: an empty pool, then a reserved one"
POOL=/proc/sys/vm/nr_hugepages
if [ -w "$POOL" ]; then
	# The pool is the host's: another test run must not change it under us.
	exec 9>/tmp/ferry-test-hugetlb.lock
	bounded 120 "the huge page pool's lock" flock 9
	OLD_POOL=$(cat "$POOL")
	trap 'echo "$OLD_POOL" >"$POOL"; cleanup' EXIT
	echo 0 >"$POOL"
	bounded 20 "ferry run on an empty pool" "$FERRY" run --incoming "unix:$TMP/h.sock" --mem 64M \
		--prealloc --mem-backend hugetlb 2>"$TMP/hugetlb.err"
	[ $? -eq 1 ] || fail "an empty pool did not fail ferry run"
	grep -q "sysctl vm.nr_hugepages=32" "$TMP/hugetlb.err" || fail "said: $(cat "$TMP/hugetlb.err")"
	echo 32 >"$POOL"
	if [ "$(cat "$POOL")" -ge 32 ]; then
		vm dst --incoming "unix:$TMP/in.sock" --mem 64M --prealloc --mem-backend hugetlb
		[ "$(memory_field dst "['backend']")" = hugetlb ] || fail "backend: $(memory_field dst "")"
		vm c --mem 64M --workload dirty:wss=32M,rate=10M
		migrate c "unix:$TMP/in.sock" --verify || fail "into huge pages: $(cat "$TMP/migrate.err")"
		expect_guest_ok dst
		[ "$(status_field dst "j['mem_backend']")" = hugetlb ] || fail "the guest is not on huge pages"
		vm e --incoming "unix:$TMP/out.sock"
		migrate dst "unix:$TMP/out.sock" --verify || fail "away from huge pages: $(cat "$TMP/migrate.err")"
		expect_guest_ok e
	else
		note "the host gave only $(cat "$POOL") huge pages: the reserved case is skipped"
	fi
else
	note "no write access to $POOL: hugetlb is not tested here"
fi
finish prealloc
