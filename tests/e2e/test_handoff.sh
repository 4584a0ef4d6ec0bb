#!/bin/sh
# The hand-off: exactly one side runs the guest, whatever the operator or
# the network does around COMMIT.
# - A destination stopped before COMMIT (SIGTERM in the rounds, quit while
#   it waits for COMMIT) fails the migration with its reason: the source
#   resumes, intact. Stopped after COMMIT, it stops like any running VM.
# - cont is refused while a migration runs, and in unknown without force.
# - unknown, settled by ferry migrate-resolve: the guest runs on the
#   destination (the source quits); the destination still waits for COMMIT
#   (it is fenced and refuses the COMMIT that comes late; the source
#   resumes); the destination discarded it (the source resumes); a
#   destination that knows nothing of it (nothing changes, exit 1).
# - The guest feels the switchover: the gap it reports is at least as long
#   as the pause the test imposed.
# The unknown cases come from tests/e2e/proxy.c between the two: it holds
# COMMIT, or swallows RESUMED.
. "$(dirname "$0")/lib.sh"
need_kvm
: "${PROXY:?set PROXY to the proxy binary}"
WORKLOAD=dirty:wss=64M,rate=20M,pattern=random,write=byte
PORT=$(port 0)
COMMIT=7 RESUMED=17


# The source's migration status and its guest: running, intact.
source_intact() { # STATUS
	[ "$(report "j['status']")" = "$1" ] || fail "expected $1, got $(report "j['status']"): $(report "j.get('reason')")"
	note "reason: $(report "j.get('reason')")"
	expect_progress src
	expect_guest_ok src
}

# migrate_unknown ARGS...: through the proxy, a migration left unknown (exit 3).
migrate_unknown() {
	migrate src "tcp:127.0.0.1:$PORT" "$@"
	[ $? -eq 3 ] || fail "ferry migrate did not exit 3 (unknown): $(report "j.get('reason')")"
	[ "$(report "j['status']")" = unknown ] || fail "expected unknown, got $(report "j['status']")"
}

# resolve: ferry migrate-resolve src -> dst; its output in $TMP/resolve.out.
resolve() {
	bounded 60 "migrate-resolve" "$FERRY" migrate-resolve --control "$(sock src)" \
		--dest-control "$(sock dst)" >"$TMP/resolve.out" 2>&1
}

vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"

note "SIGTERM on the destination during the rounds: the migration fails, the source resumes"
vm dst --incoming "unix:$TMP/in.sock"
migrate src "unix:$TMP/in.sock" --max-bandwidth 16M &
MIG=$!
wait_status src active 0
ctl src cont >"$TMP/cont.out" 2>&1 && fail "cont during a migration was allowed"
grep -q "a migration is in progress (active): cancel it first" "$TMP/cont.out" || fail "cont said: $(cat "$TMP/cont.out")"
kill -TERM "$PID_dst"
wait $MIG
source_intact failed
report "j['reason']" | grep -q "destination refused: the destination is stopping (terminated (SIGTERM))" ||
	fail "the destination's reason did not reach the source"
wait "$PID_dst"
[ $? -eq 0 ] || fail "the destination did not exit cleanly after SIGTERM"

note "quit on the destination while it waits for COMMIT: refused, the source resumes"
# (A minute of waiting for COMMIT: the test acts long before it runs out.)
vm dst --incoming "unix:$TMP/in.sock" --io-timeout-ms 60000
start_proxy "$PORT" "unix:$TMP/in.sock" --hold $COMMIT
migrate src "tcp:127.0.0.1:$PORT" --io-timeout-ms 30000 &
MIG=$!
wait_incoming dst loaded
ctl src cont >"$TMP/cont.out" 2>&1 && fail "cont during the switchover was allowed"
grep -q "in progress (switchover)" "$TMP/cont.out" || fail "cont said: $(cat "$TMP/cont.out")"
ctl dst quit >/dev/null # its ERROR comes back through the proxy; COMMIT stays held
wait $MIG
source_intact failed
report "j['reason']" | grep -q "the destination is stopping (quit requested" || fail "reason: $(report "j['reason']")"
grep -q "incoming migration complete" "$TMP/dst.log" && fail "the stopping destination started the guest"
stop_proxy

note "SIGTERM on the destination after COMMIT: it stops like any VM"
vm dst --incoming "unix:$TMP/in.sock"
migrate src "unix:$TMP/in.sock" || fail "migration: $(cat "$TMP/migrate.err")"
kill -TERM "$PID_dst"
wait "$PID_dst"
[ $? -eq 0 ] || fail "the destination's VM did not stop cleanly on SIGTERM"
grep -q "VM stopped: terminated (SIGTERM)" "$TMP/dst.log" || fail "no stop reason in the destination's log"
kill_vm src
vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"

note "unknown: the guest runs on the destination (RESUMED lost): resolve quits the source"
vm dst --incoming "unix:$TMP/in.sock"
start_proxy "$PORT" "unix:$TMP/in.sock" --swallow $RESUMED
migrate_unknown --io-timeout-ms 2000
ctl src cont >/dev/null 2>&1 && fail "cont in unknown was allowed without force"
resolve || fail "resolve: $(cat "$TMP/resolve.out")"
grep -q "The guest runs on the destination" "$TMP/resolve.out" || fail "resolve said: $(cat "$TMP/resolve.out")"
bounded 20 "the source to quit" sh -c "while kill -0 $PID_src 2>/dev/null; do sleep 0.1; done"
expect_progress dst
expect_guest_ok dst
stop_proxy
kill_vm dst
vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"

note "unknown: the destination still waits for COMMIT: resolve fences it, the source resumes"
vm dst --incoming "unix:$TMP/in.sock" --io-timeout-ms 60000
start_proxy "$PORT" "unix:$TMP/in.sock" --hold $COMMIT
migrate_unknown --io-timeout-ms 1000
[ "$(status_field dst "j['incoming']['phase']")" = loaded ] || fail "the destination is not waiting for COMMIT"
[ "$(status_field dst "int(j['incoming']['commit_wait_ms'] > 0)")" = 1 ] || fail "no COMMIT deadline"
resolve || fail "resolve: $(cat "$TMP/resolve.out")"
grep -q "had not started the guest and is fenced" "$TMP/resolve.out" || fail "resolve said: $(cat "$TMP/resolve.out")"
kill -USR1 "$PROXY_PID" # the COMMIT arrives now, too late
wait_incoming dst waiting
[ "$(status_field dst "j['incoming']['last_fenced']")" = True ] || fail "the destination does not say it was fenced"
grep -q "incoming migration complete" "$TMP/dst.log" && fail "the fenced destination started the guest"
[ "$(ctl src query-migrate | json_field - "j['status']")" = failed ] || fail "the settled migration is not failed"
expect_progress src
expect_guest_ok src
stop_proxy

note "unknown: the destination discarded it: resolve resumes the source"
start_proxy "$PORT" "unix:$TMP/in.sock" --hold $COMMIT
migrate src "tcp:127.0.0.1:$PORT" --io-timeout-ms 1000 &
MIG=$!
wait_incoming dst loaded
stop_proxy # both connections die: no COMMIT there, no answer here
wait $MIG
[ "$(report "j['status']")" = unknown ] || fail "expected unknown, got $(report "j['status']")"
wait_incoming dst waiting
resolve || fail "resolve: $(cat "$TMP/resolve.out")"
grep -q "The destination discarded the migration" "$TMP/resolve.out" || fail "resolve said: $(cat "$TMP/resolve.out")"
expect_progress src
expect_guest_ok src

note "unknown, and the destination knows nothing of it: nothing changes"
start_proxy "$PORT" "unix:$TMP/in.sock" --swallow $RESUMED
migrate_unknown --io-timeout-ms 2000
kill_vm dst # the guest ran there; now the destination is gone, and a stranger answers
vm dst --incoming "unix:$TMP/in2.sock"
resolve && fail "resolve settled a migration the destination knows nothing of"
grep -q "has no record of migration" "$TMP/resolve.out" || fail "resolve said: $(cat "$TMP/resolve.out")"
[ "$(status_field src "j['status']")" = paused ] || fail "the source did not stay paused"
note "the guest feels the switchover: with COMMIT held 300 ms, it felt a gap at least that long"
# vCPU 1 computes and never sleeps: it was running when the source paused it.
vm felt --mem 64M --vcpus 2 --workload dirty:wss=16M,rate=10M,dirtiers=1
vm dst3 --incoming "unix:$TMP/in3.sock" --io-timeout-ms 60000
start_proxy "$(port 1)" "unix:$TMP/in3.sock" --hold $COMMIT
migrate felt "tcp:127.0.0.1:$(port 1)" --io-timeout-ms 30000 &
MIG=$!
wait_incoming dst3 loaded
sleep 0.3 # the guest stays paused at least this long
kill -USR1 "$PROXY_PID"
wait $MIG || fail "the held migration: $(report "j.get('reason')")"
poll dst3 query-status "'guest_gap_ms' in r['incoming']" "what the guest felt" 10
GAP=$(status_field dst3 "j['incoming']['guest_gap_ms']")
STALL=$(status_field dst3 "j['incoming']['guest_stall_max_ms']")
note "the guest felt $GAP ms; its longest stall $STALL ms"
python3 -c "import sys; g, s = map(float, sys.argv[1:]); sys.exit(not (g >= 300 and s >= g))" "$GAP" "$STALL" ||
	fail "the guest felt $GAP ms (longest stall $STALL ms) for a pause of over 300 ms"
stop_proxy
finish handoff
