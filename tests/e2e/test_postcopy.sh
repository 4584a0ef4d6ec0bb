#!/bin/sh
# Post-copy: the guest moves before all its memory has, and its pages
# follow, those its vCPUs touch first (asked for on the return path).
# - A 2-vCPU guest dirtying whole pages faster than a capped link carries:
#   with --postcopy and --converge auto it switches to post-copy instead of
#   slowing the guest; on the main channel, and on data channels with
#   compression. --verify checks every page placed after the switch, and
#   the guest's own check of every page passes there.
# - migrate-start-postcopy switches a migration that would never converge
#   (--converge none); refused for one that did not allow post-copy.
# - The destination killed during post-copy: the source pauses for a
#   recovery (postcopy-paused) that cannot come; once its window is over
#   it says the guest is lost (exit 4), keeps it paused, and refuses cont
#   without force.
# - The source killed during post-copy: the destination pauses too (the
#   guest runs on, waiting for pages), says why, and once given up
#   (migrate-incoming-cancel) discards the guest and waits for the next.
# (Recovery from a broken link: test_recover.sh.)
. "$(dirname "$0")/lib.sh"
need_kvm
WORKLOAD=dirty:wss=128M,rate=400M,pattern=random,write=page
LINK_RATE=50M # round 0 alone takes 5 s, the guest dirties 8 times that

# The report of a completed post-copy migration, and the guest there.
expect_postcopy_done() { # DST
	[ "$(report "j['status']")" = completed ] || fail "status $(report "j['status']"): $(report "j.get('reason')")"
	[ "$(report "j['verify']")" = ok ] || fail "verify: $(report "j['verify']")"
	check=$(report "(lambda p: 'ok' if p['pending_pages'] > 0 and p['pages_asked'] + p['pages_pushed'] == p['pending_pages'] and p['requested_pages'] >= p['pages_asked'] and len(p['vcpu_blocked_ms']) == 2 and (p['pages_asked'] == 0 or sum(p['vcpu_blocked_ms']) > 0) else p)(j['postcopy'])")
	[ "$check" = ok ] || fail "post-copy account: $check"
	note "$(report "'%.0f ms, paused %.1f ms, post-copy %.0f ms: %d pages after the switch, %d asked for, fault wait p99 %.2f ms, vCPUs blocked %s ms' % (j['total_ms'], j['downtime_ms'], j['postcopy']['ms'], j['postcopy']['pending_pages'], j['postcopy']['pages_asked'], j['postcopy']['fault_wait_p99_ms'], ['%.0f' % x for x in j['postcopy']['vcpu_blocked_ms']])")"
	expect_progress "$1"
	expect_guest_ok "$1"
}

note "auto: a guest the link cannot keep up with switches to post-copy"
vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"
vm dst --incoming "unix:$TMP/in.sock"
migrate src "unix:$TMP/in.sock" --postcopy --verify --max-bandwidth "$LINK_RATE" ||
	fail "post-copy: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
report "j['converge']['decisions'][-1]['decision']" | grep -q "post-copy$" ||
	fail "the policy did not choose post-copy: $(report "j['converge']['decisions']")"
expect_postcopy_done dst
kill_vm src

note "auto, two data channels, lz4"
vm dst2 --incoming "unix:$TMP/in2.sock"
migrate dst "unix:$TMP/in2.sock" --postcopy --verify --max-bandwidth "$LINK_RATE" --channels 2 \
	--compress lz4 || fail "post-copy on channels: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_postcopy_done dst2
kill_vm dst

note "migrate-start-postcopy"
vm dst3 --incoming "unix:$TMP/in3.sock"
migrate dst2 "unix:$TMP/in3.sock" --converge none --max-bandwidth "$LINK_RATE" &
MIG=$!
wait_status dst2 active
ctl dst2 migrate-start-postcopy 2>&1 | grep -q "did not allow post-copy" ||
	fail "migrate-start-postcopy was not refused for a migration without --postcopy"
ctl dst2 migrate-cancel >/dev/null
wait "$MIG"
wait_incoming dst3
migrate dst2 "unix:$TMP/in3.sock" --converge none --postcopy --verify --max-bandwidth "$LINK_RATE" &
MIG=$!
wait_status dst2 active
ctl dst2 migrate-start-postcopy >/dev/null || fail "migrate-start-postcopy refused"
wait "$MIG" || fail "forced post-copy: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_postcopy_done dst3
kill_vm dst2

note "the destination killed during post-copy: the guest is lost, and the source says so"
vm dst4 --incoming "unix:$TMP/in4.sock"
migrate dst3 "unix:$TMP/in4.sock" --postcopy --max-bandwidth 20M --io-timeout-ms 2000 \
	--recover-timeout 1 &
MIG=$!
wait_status dst3 postcopy-active
poll dst4 query-status "(r['status'], r['running'], r['incoming']['phase']) == ('running', True, 'running')" \
	"the destination in post-copy to say its guest runs" 10
"$FERRY" status --control "$TMP/dst4.sock" | grep -q "runs here; its pages still arrive" ||
	fail "ferry status in post-copy: $("$FERRY" status --control "$TMP/dst4.sock")"
kill_vm dst4
wait_status dst3 postcopy-paused
wait "$MIG"
[ $? -eq 4 ] || fail "ferry migrate did not exit 4 (lost): $(report "j['status']") $(report "j.get('reason')")"
report "j['reason']" | grep -q "no migrate --resume within 1 s.*neither can run it" ||
	fail "reason: $(report "j.get('reason')")"
note "reason: $(report "j.get('reason')")"
[ "$(status_field dst3 "j['status']")" = paused ] || fail "the source guest is not paused: $(status_field dst3 "j['status']")"
ctl dst3 cont 2>&1 | grep -q "post-copy broke" || fail "cont was not refused after a lost post-copy"

note "the source killed during post-copy: the destination discards the guest and waits again"
vm src5 --mem 256M --vcpus 2 --workload "$WORKLOAD"
vm dst5 --incoming "unix:$TMP/in5.sock" --io-timeout-ms 2000
migrate src5 "unix:$TMP/in5.sock" --postcopy --max-bandwidth 20M &
MIG=$!
wait_status src5 postcopy-active
kill_vm src5
wait "$MIG"
wait_incoming dst5 postcopy-paused
note "destination paused: $(status_field dst5 "j['incoming']['paused_reason']")"
ctl dst5 migrate-incoming-cancel >/dev/null || fail "migrate-incoming-cancel did not give up the paused post-copy"
wait_incoming dst5
status_field dst5 "j['incoming']['last_failure']" | grep -q "post-copy broke after the guest started here" ||
	fail "the destination's failure: $(status_field dst5 "j['incoming'].get('last_failure')")"
note "destination: $(status_field dst5 "j['incoming']['last_failure']")"
kill_vm dst3; kill_vm dst5
finish e2e_postcopy
