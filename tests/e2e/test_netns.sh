#!/bin/sh
# Migration between two network namespaces joined by a veth pair shaped to
# 1 Gbit/s with tc; then the link cut in round 0: the source notices the
# stall, fails cleanly and keeps its guest; healed, it migrates again.
. "$(dirname "$0")/lib.sh"
need_kvm
need_link 1gbit
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

# cut_during NAME STATUS ROUNDS migrate-args...: cut the link once the
# migration reaches STATUS (and ROUNDS), expect a clean failure, heal. The
# arguments keep the migration in that phase long enough: a 1 ms limit with
# an unthrottled guest never switches over; a bandwidth cap makes the last
# pages take a few hundred ms, so the cut lands before COMMIT.
cut_during() {
	what=$1 at=$2 rounds=$3; shift 3
	note "cut the link during $what"
	vm_in dst "d$what" --incoming "$URI"
	migrate c "$URI" --io-timeout-ms 1500 "$@" &
	MIG=$!
	wait_status c "$at" "$rounds" || fail "never reached $at"
	"$LINK" cut "$NAME"
	wait $MIG && fail "migration over a link cut in $what succeeded"
	[ "$(report "j['status']")" = failed ] || fail "status $(report "j['status']")"
	note "reason: $(report "j.get('reason')")"
	"$LINK" heal "$NAME"
	kill_vm "d$what"
	expect_progress c
	expect_guest_ok c
}
cut_during later active 3 --downtime-ms 1 --converge none
cut_during switchover switchover 0 --verify --max-bandwidth 64M --downtime-ms 1000

note "the link healed, migrate again"
vm_in dst e --incoming "$URI"
migrate c "$URI" --verify || fail "migration after healing: $(cat "$TMP/migrate.err")"
expect_guest_ok e
finish netns
