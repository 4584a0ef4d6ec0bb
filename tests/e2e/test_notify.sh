#!/bin/sh
# The service manager's notifications (systemd's protocol: ferry@.service
# is Type=notify): ferry run says READY=1 with its pid once it serves, on a
# path or an abstract socket, and without $NOTIFY_SOCKET says nothing;
# with KVM, after ferry upgrade the new process says MAINPID=its pid, so
# that the unit follows the guest into it.
. "$(dirname "$0")/lib.sh"

# listen NAME ADDR: a datagram socket at ADDR (a path, or @name), every
# message it gets appended to $TMP/NAME.msgs, one per line ("\n" -> " ").
listen() {
	python3 - "$2" "$TMP/$1.msgs" <<'PY' &
import socket, sys
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
open(out, "w").close()
print("bound", file=open(out + ".ready", "w"))
while True:
    m = s.recv(4096).decode()
    with open(out, "a") as f:
        f.write(m.replace("\n", " ") + "\n")
PY
	PIDS="$PIDS $!"
	bounded 10 "the notification socket" sh -c "until [ -f '$TMP/$1.msgs.ready' ]; do sleep 0.05; done"
}

# heard NAME WORDS: a message with WORDS came (bounded).
heard() {
	bounded 20 "'$2' on $1" sh -c "until grep -q -- '$2' '$TMP/$1.msgs'; do sleep 0.05; done" ||
		fail "no '$2' notification: $(cat "$TMP/$1.msgs")"
}

note "a destination: READY=1 with its pid once it listens"
listen path "$TMP/notify.sock"
NOTIFY_SOCKET="$TMP/notify.sock" vm dst --incoming "unix:$TMP/in.sock"
heard path "READY=1 MAINPID=$(pid_of dst)"

note "an abstract socket"
listen abstract "@ferry-test-$$"
NOTIFY_SOCKET="@ferry-test-$$" vm dst2 --incoming "unix:$TMP/in2.sock"
heard abstract "READY=1 MAINPID=$(pid_of dst2)"

note "without NOTIFY_SOCKET: nothing"
vm dst3 --incoming "unix:$TMP/in3.sock"
sleep 0.3
for n in path abstract; do
	[ "$(wc -l <"$TMP/$n.msgs")" = 1 ] || fail "a ferry without NOTIFY_SOCKET notified: $(cat "$TMP/$n.msgs")"
done

if [ -c /dev/kvm ]; then
	note "ferry upgrade: the new process says MAINPID"
	listen upgrade "$TMP/notify-up.sock"
	NOTIFY_SOCKET="$TMP/notify-up.sock" vm src --mem 128M --mem-backend memfd --workload dirty:wss=32M,rate=10M
	heard upgrade "READY=1 MAINPID=$(pid_of src)"
	bounded 60 "ferry upgrade" "$FERRY" upgrade --control "$(sock src)" >/dev/null 2>"$TMP/upgrade.err" ||
		fail "upgrade: $(cat "$TMP/upgrade.err")"
	new=$(status_field src "j['pid']")
	[ "$new" != "$(pid_of src)" ] || fail "the upgrade did not change the process"
	heard upgrade "MAINPID=$new READY=1"
	expect_guest_ok src
	ctl src quit >/dev/null
else
	note "no /dev/kvm: the upgrade part is skipped"
fi
finish notify
