#!/bin/sh
# Migration between two network namespaces joined by a veth pair shaped to
# 1 Gbit/s with tc; then the link cut in round 0, in a later round and in
# the switchover: the source notices the stall, fails cleanly and keeps its
# guest; healed, it migrates again.
. "$(dirname "$0")/lib.sh"
need_kvm
need_link 1gbit
: "${PROXY:?set PROXY to the proxy binary}"
URI=tcp:198.18.0.2:4444

note "migrate over a 1 Gbit/s veth"
vm_in src a --mem 256M --vcpus 2 --workload dirty:wss=128M,rate=20M,write=byte
vm_in dst b --incoming "$URI"
migrate a "$URI" --verify || fail "migration: $(cat "$TMP/migrate.err") $(cat "$TMP/report.json")"
[ "$(report "j['verify']")" = ok ] || fail "verify"
# The link really is shaped: no more than 1 Gbit/s (125 MB/s) plus slack.
[ "$(report "int(j['bandwidth_bps'] < 140e6)")" = 1 ] || fail "bandwidth $(report "j['bandwidth_bps']") beyond the shaped link"
note "$(report "'total %.0f ms, downtime %.1f ms, %.0f MB/s' % (j['total_ms'], j['downtime_ms'], j['bandwidth_bps'] / 1e6)")"
expect_progress b
expect_guest_ok b

note "cut the link during round 0"
vm_in src c --mem 256M --vcpus 2 --workload dirty:wss=128M,rate=20M,write=byte
vm_in dst d --incoming "$URI"
migrate c "$URI" --io-timeout-ms 1500 &
MIG=$!
wait_status c active 0 || fail "never reached round 0"
"$LINK" cut "$NAME"
wait $MIG && fail "migration over a cut link succeeded"
[ "$(report "j['status']")" = failed ] || fail "status $(report "j['status']")"
note "reason: $(report "j.get('reason')")"
expect_progress c
expect_guest_ok c
"$LINK" heal "$NAME"
kill_vm d

# cut_during NAME URI migrate-args...: cut the link once the migration is
# where NAME says (wait_NAME), expect a clean failure, heal.
cut_during() {
	what=$1 uri=$2; shift 2
	note "cut the link during $what"
	vm_in dst "d$what" --incoming "$URI"
	migrate c "$uri" --io-timeout-ms 1500 "$@" &
	MIG=$!
	"wait_$what"
	"$LINK" cut "$NAME"
	wait $MIG && fail "migration over a link cut in $what succeeded"
	[ "$(report "j['status']")" = failed ] || fail "status $(report "j['status']")"
	note "reason: $(report "j.get('reason')")"
	"$LINK" heal "$NAME"
	kill_vm "d$what"
	expect_progress c
	expect_guest_ok c
}
# A 1 ms limit with an unthrottled guest never switches over.
wait_later() { wait_status c active 3; }
cut_during later "$URI" --downtime-ms 1 --converge none
# In the destination's namespace, a proxy holds the source's END: the source
# is in its switchover, waiting for LOADED, until the cut.
PROXY_URI=tcp:198.18.0.2:4445
wait_switchover() {
	wait_status c switchover
	bounded 30 "the proxy to hold END" sh -c "until grep -q holding '$TMP/proxy-sw.log'; do sleep 0.05; done"
}
ip netns exec "$NAME-dst" "$PROXY" "$PROXY_URI" "$URI" --hold 6 >"$TMP/proxy-sw.out" 2>"$TMP/proxy-sw.log" &
PIDS="$PIDS $!"
bounded 10 "the proxy to listen" sh -c "until grep -q ready '$TMP/proxy-sw.out'; do sleep 0.05; done"
cut_during switchover "$PROXY_URI" --verify
note "the link healed, migrate again"
vm_in dst e --incoming "$URI"
migrate c "$URI" --verify || fail "migration after healing: $(cat "$TMP/migrate.err")"
expect_guest_ok e
finish netns
