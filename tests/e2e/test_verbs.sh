#!/bin/sh
# The operator's verbs: Ctrl-C on ferry migrate cancels it and the guest
# runs on here; migrate-set halves the rate of a running migration and the
# rate follows; off a terminal, progress lines go to the log; --watch
# follows a migration from another process (Ctrl-C detaches it, the
# migration goes on) to its end; migrate-cancel cancels and reports; a
# second Ctrl-C stops waiting for a cancel that came too late.
. "$(dirname "$0")/lib.sh"
need_kvm
WORKLOAD=dirty:wss=64M,rate=40M

# start_migrate NAME ARGS...: ferry migrate from src in the background
# (stderr in $TMP/NAME.err, a file: off a terminal); pid in MIG. Returns
# once the source reports it (not the last migration, which has ended).
start_migrate() {
	_s_name=$1; shift
	_s_old=$(ctl src query-migrate | json_field - "j.get('id', 'none')")
	"$FERRY" migrate --control "$(sock src)" --to "unix:$TMP/in.sock" --json "$@" \
		>"$TMP/$_s_name.json" 2>"$TMP/$_s_name.err" &
	MIG=$!
	PIDS="$PIDS $MIG"
	bounded 30 "the migration to start" sh -c \
		"until \"$FERRY\" ctl --control '$(sock src)' query-migrate | grep -q '\"id\"' &&
		 ! \"$FERRY\" ctl --control '$(sock src)' query-migrate | grep -q '\"id\":\"$_s_old\"'; do sleep 0.02; done"
}

# ended PID WHAT: wait (bounded) for PID to exit; its exit status in RC.
ended() {
	bounded 60 "$2 to end" sh -c "while kill -0 $1 2>/dev/null; do sleep 0.05; done"
	wait "$1"
	RC=$?
}

vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"
vm dst --incoming "unix:$TMP/in.sock"

note "Ctrl-C cancels the migration; the guest runs on here"
start_migrate ctrlc --max-bandwidth 1M
wait_status src active || fail "never active"
kill -INT "$MIG"
ended "$MIG" "ferry migrate after Ctrl-C"
[ "$RC" -eq 1 ] || fail "ferry migrate exited $RC after Ctrl-C, not 1 (cancelled)"
[ "$(json_field "$TMP/ctrlc.json" "j['status']")" = cancelled ] || fail "not cancelled: $(cat "$TMP/ctrlc.json")"
grep -q "ferry: cancelling" "$TMP/ctrlc.err" || fail "Ctrl-C said: $(cat "$TMP/ctrlc.err")"
expect_progress src
expect_guest_ok src
wait_incoming dst waiting

note "migrate-set halves the rate mid-way, and the rate follows"
start_migrate slow --max-bandwidth 32M
wait_status src active || fail "never active"
"$FERRY" migrate-set --control "$(sock src)" --max-bandwidth 16M >"$TMP/set.out" ||
	fail "migrate-set: $(cat "$TMP/set.out")"
grep -q -- "--max-bandwidth: applied to the running migration" "$TMP/set.out" || fail "migrate-set said: $(cat "$TMP/set.out")"
[ "$(ctl src query-migrate-parameters | json_field - "j['max-bandwidth']")" = $((16 << 20)) ] ||
	fail "the parameter did not change"
# An upper bound only (a slow host sends less): 3 s at 16 MiB/s, plus a
# round's batch in flight.
a=$(ctl src query-migrate | json_field - "j['bytes_sent']")
t0=$(date +%s.%N)
sleep 3
b=$(ctl src query-migrate | json_field - "j['bytes_sent']")
t1=$(date +%s.%N)
python3 -c "import sys; sent=$b-$a; cap=(16<<20)*($t1-$t0)*1.1+(4<<20); sys.exit(sent > cap)" ||
	fail "sent $((b - a)) bytes in 3 s at a 16 MiB/s cap"
# Round 0 (64 MiB the guest wrote) is not done after 3 s at 16 MiB/s; at
# 1 MiB/s it lasts a minute, past every bounded wait below, however fast
# the host.
"$FERRY" migrate-set --control "$(sock src)" --max-bandwidth 1M >/dev/null || fail "migrate-set 1M"

note "off a terminal, progress lines go to the log"
bounded 30 "a progress line" sh -c "until grep -q 'ferry migrate: active, round [0-9]*, [0-9]*% (.* left), .*/s' '$TMP/slow.err'; do sleep 0.2; done" ||
	fail "no progress line: $(cat "$TMP/slow.err")"

note "--watch from another process; Ctrl-C only detaches it"
"$FERRY" migrate --watch --control "$(sock src)" 2>"$TMP/watch1.err" >/dev/null &
W=$!
bounded 30 "--watch to start" sh -c "until grep -q 'watching the migration at' '$TMP/watch1.err'; do sleep 0.05; done"
kill -INT "$W"
ended "$W" "ferry migrate --watch after Ctrl-C"
[ "$RC" -eq 6 ] || fail "--watch exited $RC after Ctrl-C, not 6 (detached)"
grep -q "no longer watching; the migration goes on by itself" "$TMP/watch1.err" || fail "--watch said: $(cat "$TMP/watch1.err")"
[ "$(ctl src query-migrate | json_field - "j['status']")" = active ] || fail "--watch's Ctrl-C stopped the migration"

note "--watch sees it through to the end"
"$FERRY" migrate --watch --control "$(sock src)" --json >"$TMP/watch2.json" 2>/dev/null &
W=$!
"$FERRY" migrate-set --control "$(sock src)" --max-bandwidth 1G >/dev/null || fail "migrate-set 1G"
ended "$W" "ferry migrate --watch"
[ "$RC" -eq 0 ] || fail "--watch exited $RC"
[ "$(json_field "$TMP/watch2.json" "j['status']")" = completed ] || fail "--watch saw $(cat "$TMP/watch2.json")"
ended "$MIG" "ferry migrate"
[ "$RC" -eq 0 ] || fail "ferry migrate exited $RC"
expect_guest_ok dst

note "migrate-cancel: cancels, waits, reports; the guest runs on here"
# A minute of waiting for COMMIT: the second Ctrl-C test holds it back.
vm back --incoming "unix:$TMP/back-in.sock" --io-timeout-ms 60000
"$FERRY" migrate --control "$(sock dst)" --to "unix:$TMP/back-in.sock" --max-bandwidth 1M >/dev/null 2>&1 &
PIDS="$PIDS $!"
wait_status dst active || fail "never active"
"$FERRY" migrate-cancel --control "$(sock dst)" --json >"$TMP/cancel.json" 2>"$TMP/cancel.err"
[ $? -eq 1 ] || fail "migrate-cancel did not exit 1 (cancelled): $(cat "$TMP/cancel.err")"
[ "$(json_field "$TMP/cancel.json" "j['status']")" = cancelled ] || fail "migrate-cancel: $(cat "$TMP/cancel.json")"
expect_progress dst
expect_guest_ok dst
"$FERRY" migrate-cancel --control "$(sock dst)" 2>"$TMP/cancel.err"
[ $? -eq 1 ] && grep -q "no migration is running" "$TMP/cancel.err" || fail "a second cancel: $(cat "$TMP/cancel.err")"
note "a second Ctrl-C stops waiting for a cancel that is too late; the migration ends by itself"
# The proxy holds COMMIT: the source has sent it, so the cancel cannot
# take the guest back and waits for the migration's end, which waits for
# the proxy.
COMMIT=7
start_proxy "$(port 0)" "unix:$TMP/back-in.sock" --hold $COMMIT
"$FERRY" migrate --control "$(sock dst)" --to "tcp:127.0.0.1:$(port 0)" --io-timeout-ms 60000 \
	>/dev/null 2>"$TMP/twice.err" &
MIG=$!
PIDS="$PIDS $MIG"
wait_incoming back loaded || fail "the switchover never began"
bounded 30 "COMMIT to be held" sh -c "until grep -q 'holding a record' '$TMP/proxy$PROXIES.log'; do sleep 0.05; done"
kill -INT "$MIG"
bounded 30 "the first Ctrl-C's answer" sh -c "until grep -q 'ferry: cancelling' '$TMP/twice.err'; do sleep 0.05; done"
kill -INT "$MIG"
ended "$MIG" "ferry migrate after a second Ctrl-C"
[ "$RC" -eq 6 ] || fail "ferry migrate exited $RC after a second Ctrl-C, not 6 (detached)"
grep -q "no longer waiting; the cancel goes on by itself" "$TMP/twice.err" ||
	fail "the second Ctrl-C said: $(cat "$TMP/twice.err")"
kill -USR1 "$PROXY_PID"
wait_status dst completed || fail "the migration did not end by itself"
expect_guest_ok back
stop_proxy
finish verbs
