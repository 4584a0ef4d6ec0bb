#!/bin/sh
# Faults. On the destination: corrupted, truncated, garbage and out-of-range
# streams are clean errors, a data channel with a wrong token is turned
# away and one out of step with the rounds is an error, the partial VM is discarded, and a real migration
# to the same destination then succeeds; a guest started on COMMIT is kept
# even if the source vanishes. On the source: the destination killed in
# round 0 and in a later round, gone in switchover before COMMIT, refusing
# at the end, and a cancel mid-way each leave the source guest running,
# passing its self-check and able to migrate again; silence after COMMIT
# leaves it paused as unknown.
. "$(dirname "$0")/lib.sh"
need_kvm
: "${BAD_SOURCE:?set BAD_SOURCE to the bad_source binary}"
: "${BAD_DEST:?set BAD_DEST to the bad_dest binary}"
# The state the bad sources send: of this host's KVM (another KVM may refuse
# a saved MSR, kvm_pvm's LBR MSRs on SVM say).
STATE_BLOB="$TMP/state.bin"
"$BAD_SOURCE" state-blob "$STATE_BLOB" || fail "bad_source state-blob"

WORKLOAD=dirty:wss=96M,rate=40M,pattern=random,write=byte

note "destination: malformed streams, then a good migration"
vm dst --incoming "unix:$TMP/in.sock" --mem 512M
for mode in garbage corrupt truncate bad-gfn no-state bad-hash skip-bit short-round; do
	"$BAD_SOURCE" "$mode" "unix:$TMP/in.sock" "$STATE_BLOB" >"$TMP/bad-$mode.out" 2>&1 ||
		fail "bad_source $mode: $(cat "$TMP/bad-$mode.out")"
	wait_incoming dst waiting || fail "destination did not go back to waiting after $mode"
done
grep -q "checksum" "$TMP/dst.log" || fail "no checksum error in the destination log"
"$BAD_SOURCE" intruder "unix:$TMP/in.sock" >"$TMP/bad-intruder.out" 2>&1 ||
	fail "bad_source intruder: $(cat "$TMP/bad-intruder.out")"
grep -q "refused a data channel: it does not belong to this migration (wrong token)" "$TMP/dst.log" ||
	fail "the destination did not turn the intruder away"
wait_incoming dst waiting
vm src --mem 128M --vcpus 2 --workload "$WORKLOAD"
migrate src "unix:$TMP/in.sock" --verify || fail "good migration after bad ones: $(cat "$TMP/migrate.err")"
expect_guest_ok dst
ctl src quit >/dev/null; ctl dst quit >/dev/null

note "destination: the source sends COMMIT and vanishes: the guest is ours now"
vm dst --incoming "unix:$TMP/in.sock"
"$BAD_SOURCE" commit-and-vanish "unix:$TMP/in.sock" "$STATE_BLOB" || fail "commit-and-vanish"
# (The test's state blob is of a guest that never ran, so it stops at once;
# what matters is that the destination started it rather than discarding it.)
bounded 30 "the destination to start the guest" sh -c \
	"until grep -q 'incoming migration complete: the guest runs here' '$TMP/dst.log'; do sleep 0.05; done" ||
	fail "the destination did not keep the guest it had started"
grep -q "partial VM is discarded" "$TMP/dst.log" && fail "the destination discarded a committed guest"
kill_vm dst

# start_bad_dest MODE: tests/e2e/bad_dest.c on unix:$TMP/bad.sock, pid in BD.
start_bad_dest() {
	"$BAD_DEST" "$1" "unix:$TMP/bad.sock" >"$TMP/bad-dest-$1.out" &
	BD=$!
	bounded 10 "bad_dest to listen" sh -c "until grep -q ready '$TMP/bad-dest-$1.out'; do sleep 0.05; done"
}

# src must still run its guest, intact, and be able to migrate for real.
expect_source_intact() { # SRC WHAT
	[ "$(report "j['status']")" = "$2" ] || fail "expected $2, got $(report "j['status']"): $(report "j.get('reason')")"
	[ -n "$(report "j.get('reason','')")" ] || fail "no reason given"
	note "reason: $(report "j.get('reason')")"
	expect_progress src
	expect_guest_ok src
}

start_pair() {
	vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"
	vm dst --incoming "unix:$TMP/in.sock"
}


note "source: destination killed during round 0"
start_pair
migrate src "unix:$TMP/in.sock" --max-bandwidth 32M &
MIG=$!
wait_status src active 0 || fail "never active"
kill_vm dst
wait $MIG
expect_source_intact src failed

note "source: destination killed during a later round"
vm dst --incoming "unix:$TMP/in.sock"
migrate src "unix:$TMP/in.sock" --downtime-ms 1 --converge none &
MIG=$!
wait_status src active 2 || fail "never reached round 2"
kill_vm dst
wait $MIG
expect_source_intact src failed

note "source: destination gone in switchover, before COMMIT"
start_bad_dest die-before-loaded
migrate src "unix:$TMP/bad.sock" --verify && fail "migration to a vanished destination succeeded"
wait $BD
expect_source_intact src failed
report "j['reason']" | grep -q "^switchover: no LOADED" || fail "not a switchover failure"

note "source: a destination that never answers the connect"
# A listener whose accept queue is full drops new SYNs: connect hangs.
DEAF_PORT=$(port 0)
python3 -c "
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', $DEAF_PORT)); l.listen(0)
c = []
for _ in range(3):  # the first fills the queue (backlog 0); later SYNs are dropped
    try: c.append(socket.create_connection(('127.0.0.1', $DEAF_PORT), timeout=0.5))
    except OSError: pass
print('ready', flush=True); time.sleep(120)" >"$TMP/deaf.out" &
PIDS="$PIDS $!"
bounded 10 "the deaf listener" sh -c "until grep -q ready '$TMP/deaf.out'; do sleep 0.05; done"
migrate src "tcp:127.0.0.1:$DEAF_PORT" --io-timeout-ms 1000 && fail "a migration to a deaf destination succeeded"
expect_source_intact src failed
report "j['reason']" | grep -q "cannot connect to 127.0.0.1:$DEAF_PORT: no answer in 1.0 s" || fail "connect timeout reason"
migrate src "tcp:127.0.0.1:$DEAF_PORT" --io-timeout-ms 60000 &
MIG=$!
wait_status src setup
ctl src cont >"$TMP/cont.out" 2>&1 && fail "cont during the setup was allowed"
grep -q "a migration is in progress (setup): cancel it first" "$TMP/cont.out" || fail "cont said: $(cat "$TMP/cont.out")"
ctl src migrate-cancel >/dev/null || fail "migrate-cancel during connect refused"
wait $MIG
expect_source_intact src cancelled
# The cancel ended the connect's wait (60 s), not its timeout.
[ "$(report "int(j['total_ms'] < 30000)")" = 1 ] || fail "the cancel did not end the connect"

note "source: cancel mid-way"
vm dst --incoming "unix:$TMP/in.sock"
migrate src "unix:$TMP/in.sock" --downtime-ms 1 --converge none &
MIG=$!
wait_status src active 1 || fail "never active"
ctl src migrate-cancel >/dev/null || fail "migrate-cancel refused"
wait $MIG
expect_source_intact src cancelled
[ "$(status_field dst "j['status']")" = incoming ] || fail "destination should be waiting again"

note "source: timeout (a downtime limit it can never meet)"
migrate src "unix:$TMP/in.sock" --downtime-ms 1 --max-bandwidth 16M --timeout 2 &&
	fail "an impossible migration succeeded"
expect_source_intact src failed
report "j['reason']" | grep -q "did not converge in 2 s: the first copy of memory did not even finish (the link carries" || fail "timeout reason"

note "source: the destination refuses at the end"
start_bad_dest refuse
migrate src "unix:$TMP/bad.sock" && fail "a refused migration reported success"
wait $BD
expect_source_intact src failed
report "j['reason']" | grep -q "destination refused: no space left" || fail "refusal not passed on"

note "source: COMMIT sent, no answer: stays paused, says unknown (exit 3)"
start_bad_dest silent-after-commit
migrate src "unix:$TMP/bad.sock" --io-timeout-ms 1000
[ $? -eq 3 ] || fail "ferry migrate did not exit 3 for an unknown outcome"
wait $BD # bad_dest bounds its own waits
[ "$(report "j['status']")" = unknown ] || fail "expected unknown, got $(report "j['status']")"
note "reason: $(report "j.get('reason')")"
[ "$(status_field src "j['status']")" = paused ] || fail "source must stay paused, is $(status_field src "j['status']")"
a=$(status_field src "j['guest']['pages_written']"); sleep 0.5
[ "$(status_field src "j['guest']['pages_written']")" = "$a" ] || fail "the paused source guest made progress"
ctl src cont >"$TMP/cont.out" 2>&1 && fail "cont in unknown was allowed without force"
grep -q "outcome is unknown.*force" "$TMP/cont.out" || fail "cont in unknown said: $(cat "$TMP/cont.out")"
note "the operator knows the destination is gone: resume here, with force"
ctl src cont '{"force": true}' >/dev/null || fail "cont with force after unknown refused"
[ "$(ctl src query-migrate | json_field - "j['status']")" = failed ] || fail "the settled migration is not failed"
expect_progress src
expect_guest_ok src

note "source: after all that, a real migration"
migrate src "unix:$TMP/in.sock" --verify || fail "final migration: $(cat "$TMP/migrate.err")"
expect_guest_ok dst
finish faults
