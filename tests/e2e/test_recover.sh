#!/bin/sh
# Post-copy recovery: a link cut after the guest started on the destination
# pauses both sides (postcopy-paused) instead of losing it; the guest runs
# on there. migrate-recover on the destination and migrate --resume on the
# source take it up again: the destination says which pages it still
# lacks, the source sends them, and every page the guest reads is current
# (--verify checks each page placed, the guest its own).
# - Cut at several points of post-copy (tests/e2e/proxy.c --cut): early
#   (on data channels with compression, which join again), half-way, among
#   the last pages.
# - A resume to a dead URI, then to a wrong one (another destination): each
#   try fails, both sides stay paused, and the right URI then works; migrate-recover refuses a URI it cannot
#   listen on (and is listening when it answers: the source may come at once).
# - migrate-recover on a destination with nothing paused, and --resume with
#   other flags, are refused with a sentence.
. "$(dirname "$0")/lib.sh"
need_kvm
# Sequential: after the switch each vCPU reads (checks) and rewrites pages
# in a known order, each one a page still to come.
WORKLOAD=dirty:wss=128M,rate=400M,pattern=sequential,write=page
LINK_RATE=50M # post-copy takes seconds: room to cut it anywhere

# cut_and_recover SRC DST PERMILLE [MIGRATE_ARGS...]: migrate SRC to DST
# through a proxy that cuts every connection at PERMILLE of post-copy's
# pages, then recover at DST's own incoming socket.
cut_and_recover() {
	_r_src=$1 _r_dst=$2 _r_cut=$3 _r_uri=unix:$TMP/$2-in.sock
	shift 3
	start_proxy "$PROXY_PORT" "unix:$TMP/$_r_dst-in.sock" --cut "$_r_cut"
	migrate "$_r_src" "tcp:127.0.0.1:$PROXY_PORT" --postcopy --verify --max-bandwidth "$LINK_RATE" "$@" &
	_r_mig=$!
	wait_status "$_r_src" postcopy-paused || return
	wait_incoming "$_r_dst" postcopy-paused || return
	note "paused at $_r_cut/1000: $(status_field "$_r_dst" "j['incoming']['paused_reason']")"
	ctl "$_r_dst" migrate-recover "{\"uri\": \"$_r_uri\"}" >/dev/null || fail "migrate-recover refused"
	"$FERRY" migrate --control "$TMP/$_r_src.sock" --resume --to "$_r_uri" --json \
		>"$TMP/resume.json" 2>"$TMP/resume.err" ||
		fail "resume at $_r_uri: $(cat "$TMP/resume.err") $(json_field "$TMP/resume.json" "j.get('reason')")"
	wait "$_r_mig" || fail "the migration cut at $_r_cut/1000: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
	[ "$(report "j['status']")" = completed ] || fail "status $(report "j['status']")"
	[ "$(report "j['verify']")" = ok ] || fail "verify: $(report "j['verify']")"
	[ "$(report "j['postcopy']['recoveries']")" -ge 1 ] || fail "no recovery counted: $(report "j['postcopy']")"
	note "$(report "'%.0f ms, %d pages after the switch; the link back %.1f ms after --resume' % (j['total_ms'], j['postcopy']['pending_pages'], j['postcopy']['recover_ms'])"); destination: pages flowed again $(status_field "$_r_dst" "j['incoming']['recover_ms']") ms after migrate-recover"
	expect_progress "$_r_dst"
	expect_guest_ok "$_r_dst"
}
PROXY_PORT=$(port 3)

note "refusals"
vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"
vm dst --incoming "unix:$TMP/dst-in.sock"
ctl dst migrate-recover '{"uri": "unix:/nowhere"}' 2>&1 | grep -q "no post-copy is paused here" ||
	fail "migrate-recover was not refused on a destination with nothing paused"
ctl dst migrate-recover '{"uri": "unix:/nowhere", "x": 1}' 2>&1 | grep -q "takes uri, not 'x'" ||
	fail "migrate-recover took an argument it does not know"
"$FERRY" migrate --control "$TMP/src.sock" --resume --to unix:/nowhere --verify 2>"$TMP/err"
[ $? -eq 2 ] && grep -q "takes only --to" "$TMP/err" || fail "--resume with --verify: $(cat "$TMP/err")"
"$FERRY" migrate --control "$TMP/src.sock" --resume --to unix:/nowhere 2>"$TMP/err" >/dev/null
grep -q "no migration to resume here" "$TMP/err" ||
	fail "--resume with nothing paused: $(cat "$TMP/err")"

note "cut half-way; a resume to a dead URI first, then the right one"
start_proxy "$PROXY_PORT" "unix:$TMP/dst-in.sock" --cut 500
migrate src "tcp:127.0.0.1:$PROXY_PORT" --postcopy --verify --max-bandwidth "$LINK_RATE" &
MIG=$!
wait_status src postcopy-paused
wait_incoming dst postcopy-paused
"$FERRY" migrate --control "$TMP/src.sock" --resume --to "unix:$TMP/dead.sock" --json >"$TMP/resume.json" 2>"$TMP/resume.err"
[ $? -eq 5 ] || fail "a resume to a dead URI did not exit 5: $(cat "$TMP/resume.err")"
json_field "$TMP/resume.json" "j['reason']" | grep -q "resuming on unix:$TMP/dead.sock failed" ||
	fail "the failed try's reason: $(json_field "$TMP/resume.json" "j.get('reason')")"
note "dead URI: $(json_field "$TMP/resume.json" "j['reason']")"
# A wrong one: another destination, waiting for a migration of its own.
vm dst2 --incoming "unix:$TMP/dst2-in.sock"
"$FERRY" migrate --control "$TMP/src.sock" --resume --to "unix:$TMP/dst2-in.sock" --json >"$TMP/resume.json" 2>"$TMP/resume.err"
[ $? -eq 5 ] || fail "a resume to another destination did not exit 5: $(cat "$TMP/resume.err")"
json_field "$TMP/resume.json" "j['reason']" | grep -q "destination refused: .*RESUME came where CONFIG was due" ||
	fail "the wrong try's reason: $(json_field "$TMP/resume.json" "j.get('reason')")"
note "wrong URI: $(json_field "$TMP/resume.json" "j['reason']")"
wait_incoming dst2
[ "$(status_field dst "j['incoming']['phase']")" = postcopy-paused ] || fail "the destination is not paused"
ctl dst migrate-recover '{"uri": "unix:/nonexistent/x.sock"}' 2>&1 | grep -q "cannot listen on /nonexistent/x.sock" ||
	fail "migrate-recover on a URI it cannot listen on was not refused"
ctl dst migrate-recover "{\"uri\": \"unix:$TMP/rec.sock\"}" >/dev/null || fail "migrate-recover refused"
"$FERRY" migrate --control "$TMP/src.sock" --resume --to "unix:$TMP/rec.sock" --json >"$TMP/resume.json" 2>"$TMP/resume.err" ||
	fail "resume: $(cat "$TMP/resume.err") $(json_field "$TMP/resume.json" "j.get('reason')")"
wait "$MIG" || fail "the migration: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
[ "$(report "j['status']")" = completed ] || fail "status $(report "j['status']")"
[ "$(report "j['verify']")" = ok ] || fail "verify: $(report "j['verify']")"
expect_progress dst
expect_guest_ok dst
kill_vm src

note "cut early, on two data channels with lz4 (they join again)"
cut_and_recover dst dst2 20 --channels 2 --compress lz4
kill_vm dst

note "cut among the last pages"
vm dst3 --incoming "unix:$TMP/dst3-in.sock"
cut_and_recover dst2 dst3 950
kill_vm dst2; kill_vm dst3
finish e2e_recover
