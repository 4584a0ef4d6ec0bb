#!/bin/sh
# Limits before trust. A destination refuses a guest larger than this host
# can give, less its --host-reserve, and gives up on a source that trickles
# its handshake past the handshake's deadline, floods it with optional
# records it skips, or sends pages past the transfer's deadline; each time
# it waits for the next source (and the source's guest runs on), and a real
# migration then succeeds. The deadlines' flags are
# refused without --incoming and for what is not a number of seconds.
# migrate-incoming keeps ferry run --incoming's deadlines or takes its own.
. "$(dirname "$0")/lib.sh"
need_kvm
: "${BAD_SOURCE:?set BAD_SOURCE to the bad_source binary}"

note "options"
usage_refused "go with --incoming" --handshake-timeout 5
usage_refused "is not a whole number of seconds" --incoming "unix:$TMP/x.sock" --transfer-timeout 3s

note "a destination without --mem: greedy sources, then a good migration"
vm dst --incoming "unix:$TMP/in.sock" --handshake-timeout 2 --transfer-timeout 3
for mode in huge trickle skip-flood flood; do
	bounded 90 "bad_source $mode" "$BAD_SOURCE" "$mode" "unix:$TMP/in.sock" >"$TMP/bad-$mode.out" 2>&1 ||
		fail "bad_source $mode: $(cat "$TMP/bad-$mode.out")"
	wait_incoming dst waiting || fail "destination did not go back to waiting after $mode"
done
grep -q "more than this host can give now" "$TMP/dst.log" || fail "no sentence for the huge guest"
# Small, so that it moves well inside the 3 s deadline on a slow host too.
vm src --mem 64M --vcpus 2 --workload dirty:wss=4M,rate=1M,pattern=random,write=byte

note "a destination that keeps all but 32 MiB of this host refuses the guest; it runs on"
avail_mib=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
vm tight --incoming "unix:$TMP/tight-in.sock" --host-reserve "$((avail_mib - 32))M"
migrate src "unix:$TMP/tight-in.sock" && fail "a destination without room took the guest"
report "j.get('reason')" | grep -q "more than this host can give now" ||
	fail "refused without the sentence: $(report "j.get('reason')")"
expect_guest_ok src
ctl tight quit >/dev/null

note "the good migration"
migrate src "unix:$TMP/in.sock" --verify || fail "good migration after greedy ones: $(cat "$TMP/migrate.err")"
expect_guest_ok dst

note "migrate-incoming: deadlines of its own, or those of ferry run --incoming"
ctl src migrate-incoming "{\"uri\": \"unix:$TMP/back.sock\", \"bogus\": 1}" >"$TMP/mi.out" 2>&1 &&
	fail "migrate-incoming took an argument it does not know"
grep -q "not 'bogus'" "$TMP/mi.out" || fail "migrate-incoming said: $(cat "$TMP/mi.out")"
ctl src migrate-incoming "{\"uri\": \"unix:$TMP/back.sock\", \"handshake-timeout-s\": 2}" >/dev/null ||
	fail "migrate-incoming with a handshake deadline refused"
wait_incoming src waiting
bounded 90 "bad_source trickle" "$BAD_SOURCE" trickle "unix:$TMP/back.sock" >"$TMP/bad-back.out" 2>&1 ||
	fail "migrate-incoming's own deadline: $(cat "$TMP/bad-back.out")"
wait_incoming src waiting
migrate dst "unix:$TMP/back.sock" --verify || fail "migration back: $(cat "$TMP/migrate.err")"
expect_guest_ok src
# dst was started with --transfer-timeout 3: its next wait keeps it.
ctl dst migrate-incoming "{\"uri\": \"unix:$TMP/in.sock\"}" >/dev/null || fail "migrate-incoming on dst"
wait_incoming dst waiting
bounded 90 "bad_source flood" "$BAD_SOURCE" flood "unix:$TMP/in.sock" >"$TMP/bad-flood2.out" 2>&1 ||
	fail "ferry run --incoming's deadline after migrate-incoming: $(cat "$TMP/bad-flood2.out")"
ctl src quit >/dev/null; ctl dst quit >/dev/null
finish limits
