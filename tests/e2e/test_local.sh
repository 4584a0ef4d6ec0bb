#!/bin/sh
# Local migration (--local: the memory goes over as its fd, SCM_RIGHTS) and
# live upgrade (ferry upgrade: a new process takes the guest that way):
# - a destination refuses a local stream whose memory may shrink, that
#   comes without its fd, or that sends pages; and it never writes a byte of
#   the memory it was handed before COMMIT (a --verify mismatch, checked on
#   the source's own copy of the fd);
# - --local is refused with a sentence for anon memory, a tcp: URI, or an
#   option about pages;
# - a 2-vCPU dirtying guest moves with --verify, its self-check clean,
#   sending only its state, and goes on running; so does a hugetlb guest;
# - a destination that refuses at the end leaves the source guest running;
# - upgrade to the same binary: the guest runs on in the new process, which
#   serves the control socket; upgrade to a binary of the next stream
#   version, to no binary or to one that does not start: refused with a
#   sentence, the guest runs on in the old process and no process or
#   socket is left behind; a newer ferry's guest is refused by an older;
# - A -> B -> A 20 times (migrate-incoming makes a ferry whose guest left
#   wait for one again): no descriptor or mapping grows in either.
. "$(dirname "$0")/lib.sh"
need_kvm
: "${BAD_SOURCE:?set BAD_SOURCE to the bad_source binary}"
: "${BAD_DEST:?set BAD_DEST to the bad_dest binary}"
: "${FERRY_NEXT:?set FERRY_NEXT to the ferry-next binary}"
# The state the bad sources send: of this host's KVM (another KVM may refuse
# a saved MSR, kvm_pvm's LBR MSRs on SVM say).
STATE_BLOB="$TMP/state.bin"
"$BAD_SOURCE" state-blob "$STATE_BLOB" || fail "bad_source state-blob"
WORKLOAD=dirty:wss=96M,rate=40M,pattern=random,write=byte

note "destination: malformed local streams; it never writes the memory it was handed"
# --mem 256M: the guest below (256M) fits the VM made ahead; bad_source's
# (64M) does not.
vm dst --incoming "unix:$TMP/in.sock" --mem 256M
for mode in local-unsealed local-no-fd local-pages local-bad-hash; do
	"$BAD_SOURCE" "$mode" "unix:$TMP/in.sock" "$STATE_BLOB" >"$TMP/bad-$mode.out" 2>&1 ||
		fail "bad_source $mode: $(cat "$TMP/bad-$mode.out")"
	wait_incoming dst waiting || fail "destination did not go back to waiting after $mode"
done

note "--local refuses what it cannot do"
vm anon --mem 64M
migrate anon "unix:$TMP/in.sock" --local && fail "anon memory went --local"
grep -q "start the VM with --mem-backend memfd or hugetlb" "$TMP/migrate.err" ||
	fail "anon: said $(cat "$TMP/migrate.err")"
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock anon)" >/dev/null 2>"$TMP/upgrade.err" &&
	fail "anon memory upgraded in place"
grep -q "only a VM started with --mem-backend memfd or hugetlb is upgraded in place" "$TMP/upgrade.err" ||
	fail "anon upgrade: said $(cat "$TMP/upgrade.err")"
ctl anon quit >/dev/null
vm src --mem 256M --vcpus 2 --mem-backend memfd --workload "$WORKLOAD"
migrate src "tcp:127.0.0.1:$(port 0)" --local && fail "--local went over tcp"
grep -q "on a unix socket (unix:PATH); tcp:127.0.0.1:$(port 0) is not one" "$TMP/migrate.err" ||
	fail "tcp: said $(cat "$TMP/migrate.err")"
migrate src "unix:$TMP/in.sock" --local --channels 2
[ $? -eq 2 ] || fail "--local --channels not refused with exit 2"
grep -q -- "--local sends no page, so --channels does not apply" "$TMP/migrate.err" ||
	fail "--channels: said $(cat "$TMP/migrate.err")"
ctl src migrate "{\"uri\": \"unix:$TMP/in.sock\", \"local\": true, \"compress\": \"lz4\"}" >/dev/null 2>"$TMP/ctl.err" &&
	fail "migrate local with compress went"
grep -q "a local migration sends no page, so 'compress' does not apply" "$TMP/ctl.err" ||
	fail "control compress: said $(cat "$TMP/ctl.err")"
bounded 10 "ferry run --takeover" "$FERRY" run --takeover >/dev/null 2>"$TMP/usage.err"
[ $? -eq 2 ] || fail "--takeover without --incoming not refused with exit 2"

note "a 2-vCPU dirtying guest moves by its memory's fd, --verify"
expect_progress src
migrate src "unix:$TMP/in.sock" --local --verify || fail "local migration: $(cat "$TMP/migrate.err")"
[ "$(report "j['status']")" = completed ] || fail "status $(report "j['status']"): $(report "j.get('reason')")"
[ "$(report "j['local']")" = True ] || fail "the report does not say local"
[ "$(report "j['verify']")" = ok ] || fail "verify: $(report "j['verify']")"
[ "$(report "j['bytes_sent'] < (1 << 20) and j['rounds'] == 0")" = True ] ||
	fail "pages were sent: $(report "j['bytes_sent']") bytes, $(report "j['rounds']") rounds"
expect_progress dst
expect_guest_ok dst
grep -q "the guest goes into the VM made ahead for --mem, with the memory handed over" "$TMP/dst.log" ||
	fail "the destination did not use the VM it made ahead"
[ "$(status_field src "j['status']")" = postmigrate ] || fail "source: $(status_field src "j['status']")"
ctl src quit >/dev/null

note "the destination refuses at the end: the source guest runs on, intact"
"$BAD_DEST" refuse "unix:$TMP/bad.sock" >"$TMP/bad-dest.out" &
BD=$!
bounded 10 "bad_dest to listen" sh -c "until grep -q ready '$TMP/bad-dest.out'; do sleep 0.05; done"
migrate dst "unix:$TMP/bad.sock" --local && fail "a refused local migration completed"
[ "$(report "j['status']")" = failed ] || fail "expected failed, got $(report "j['status']")"
wait "$BD"
expect_progress dst
expect_guest_ok dst

note "upgrade to the same binary: a new process runs the guest and serves the socket"
OLD=$PID_dst
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock dst)" --json >"$TMP/upgrade.json" 2>"$TMP/upgrade.err" ||
	fail "upgrade: $(cat "$TMP/upgrade.err")"
NEW=$(json_field "$TMP/upgrade.json" "j['pid']")
PIDS="$PIDS $NEW"
[ "$NEW" != "$OLD" ] && [ "$(status_field dst "j['pid']")" = "$NEW" ] || fail "the socket is not served by the new process ($NEW)"
[ "$(json_field "$TMP/upgrade.json" "j['report']['local']")" = True ] || fail "the upgrade was no local migration"
bounded 10 "the old process to exit" sh -c "while kill -0 $OLD 2>/dev/null; do sleep 0.05; done" ||
	fail "the old process is still there"
expect_progress dst
expect_guest_ok dst

note "upgrade to the next stream version, and to no binary: refused, the guest stays"
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock dst)" --binary "$FERRY_NEXT" >/dev/null 2>"$TMP/upgrade.err" &&
	fail "upgraded to a binary of another stream version"
grep -q "migration stream version [0-9]* is not supported (this ferry speaks [0-9]*)" "$TMP/upgrade.err" ||
	fail "next version: said $(cat "$TMP/upgrade.err")"
grep -q "the guest runs on here, in ferry $NEW" "$TMP/upgrade.err" || fail "no word of the guest: $(cat "$TMP/upgrade.err")"
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock dst)" --binary "$TMP/none" >/dev/null 2>"$TMP/upgrade.err" &&
	fail "upgraded to nothing"
grep -q "$TMP/none is not an executable" "$TMP/upgrade.err" || fail "no binary: said $(cat "$TMP/upgrade.err")"
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock dst)" --binary /bin/false >/dev/null 2>"$TMP/upgrade.err" &&
	fail "upgraded to /bin/false"
grep -q "the new ferry exited with status 1): the guest runs on here" "$TMP/upgrade.err" ||
	fail "/bin/false: said $(cat "$TMP/upgrade.err")"
[ "$(status_field dst "j['pid']")" = "$NEW" ] || fail "the guest moved"
[ -e "$(sock dst).new" ] && fail "the refused ferry left its socket"
[ "$(pgrep -c -P "$NEW")" = 0 ] || fail "a child of ferry $NEW is left: $(pgrep -a -P "$NEW")"
expect_progress dst
expect_guest_ok dst
ctl dst quit >/dev/null

note "an older ferry refuses a newer one's stream: the guest stays in the newer"
SAVED=$FERRY
FERRY=$FERRY_NEXT
vm nx --mem 128M --mem-backend memfd --workload "$WORKLOAD"
FERRY=$SAVED
bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock nx)" --binary "$FERRY" >/dev/null 2>"$TMP/upgrade.err" &&
	fail "an older ferry took a newer one's guest"
grep -q "migration stream version [0-9]* is not supported (this ferry speaks [0-9]*)" "$TMP/upgrade.err" ||
	fail "older: said $(cat "$TMP/upgrade.err")"
expect_progress nx
expect_guest_ok nx
ctl nx quit >/dev/null

note "A -> B -> A, 20 times: no descriptor or mapping grows in either process"
fds() { ls "/proc/$1/fd" | wc -l; }
vmsize_kb() { awk '/^VmSize/ {print $2}' "/proc/$1/status"; }
# round_trip I: A -> B, A waits again, B -> A, B waits again.
round_trip() {
	migrate a "unix:$TMP/b.mig" --local || { fail "A -> B #$1: $(cat "$TMP/migrate.err")"; return 1; }
	ctl a migrate-incoming "{\"uri\": \"unix:$TMP/a.mig\"}" >/dev/null || { fail "A migrate-incoming #$1"; return 1; }
	wait_incoming a waiting || return 1
	migrate b "unix:$TMP/a.mig" --local || { fail "B -> A #$1: $(cat "$TMP/migrate.err")"; return 1; }
	ctl b migrate-incoming "{\"uri\": \"unix:$TMP/b.mig\"}" >/dev/null || { fail "B migrate-incoming #$1"; return 1; }
	wait_incoming b waiting
}
vm a --mem 256M --vcpus 2 --mem-backend memfd --workload "$WORKLOAD"
vm b --incoming "unix:$TMP/b.mig"
ctl a migrate-incoming "{\"uri\": \"unix:$TMP/x.mig\"}" >/dev/null 2>"$TMP/mi.err" && fail "migrate-incoming with the guest still here"
grep -q "the guest still runs here" "$TMP/mi.err" || fail "migrate-incoming: said $(cat "$TMP/mi.err")"
for i in $(seq 20); do
	round_trip "$i" || break
	[ "$i" = 2 ] && FA=$(fds "$PID_a") FB=$(fds "$PID_b") SA=$(vmsize_kb "$PID_a") SB=$(vmsize_kb "$PID_b")
done
# Counted after the second trip; a loop that broke before it has failed already.
if [ -n "${FA:-}" ]; then
	[ "$(fds "$PID_a")" = "$FA" ] && [ "$(fds "$PID_b")" = "$FB" ] ||
		fail "descriptors grew: A $FA -> $(fds "$PID_a"), B $FB -> $(fds "$PID_b")"
	python3 -c "import sys; a, b, c, d = map(int, sys.argv[1:]); sys.exit(not (c - a < 65536 and d - b < 65536))" \
		"$SA" "$SB" "$(vmsize_kb "$PID_a")" "$(vmsize_kb "$PID_b")" ||
		fail "mappings grew: A $SA -> $(vmsize_kb "$PID_a") KiB, B $SB -> $(vmsize_kb "$PID_b") KiB"
fi
expect_progress a
expect_guest_ok a
ctl a quit >/dev/null; ctl b quit >/dev/null

note "hugetlb: the huge pages go over the same way"
POOL=/proc/sys/vm/nr_hugepages
WAS=$(cat "$POOL")
trap 'echo "$WAS" >"$POOL"; cleanup' EXIT
echo $((WAS + 64)) >"$POOL"
if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge 64 ]; then
	vm huge --mem 128M --mem-backend hugetlb --workload "$WORKLOAD"
	vm hdst --incoming "unix:$TMP/hin.sock" --mem 128M
	migrate huge "unix:$TMP/hin.sock" --local --verify || fail "hugetlb local: $(cat "$TMP/migrate.err")"
	[ "$(status_field hdst "j['mem_backend']")" = hugetlb ] || fail "not hugetlb there"
	expect_guest_ok hdst
	ctl huge quit >/dev/null; ctl hdst quit >/dev/null
else
	note "no 64 huge pages free: hugetlb case skipped"
fi

finish local
