#!/bin/sh
# ferry list: the VMs started with --control NAME, found in the run
# directory (FERRY_RUN_DIR here), each with its state; a socket whose ferry
# is gone is listed as stale; any command takes the NAME. With KVM: three
# VMs, one migrating to another.
. "$(dirname "$0")/lib.sh"
export FERRY_RUN_DIR="$TMP/run"

# named NAME ferry-run-args...: a ferry with --control NAME.
named() {
	_n=$1; shift
	"$FERRY" run --control "$_n" "$@" 2>"$TMP/$_n.log" &
	PIDS="$PIDS $!"
	wait_socket "$FERRY_RUN_DIR/$_n.sock"
}

# listed NAME PYTHON-CONDITION: ferry list --json's line for NAME (as v) holds it.
listed() {
	"$FERRY" list --json >"$TMP/list.json" || { fail "ferry list failed"; return; }
	python3 - "$TMP/list.json" "$1" "$2" <<'PY' || fail "ferry list: $1 is not as expected ($2): $(cat "$TMP/list.json")"
import json, sys
vms = {v["name"]: v for v in map(json.loads, open(sys.argv[1]))}
v = vms.get(sys.argv[2])
sys.exit(0 if v is not None and eval(sys.argv[3]) else 1)
PY
}

note "no VM yet: an empty list, with its header"
[ "$("$FERRY" list | wc -l)" = 1 ] || fail "ferry list without a run directory: $("$FERRY" list 2>&1)"
mkdir -p "$TMP/empty"
[ "$(FERRY_RUN_DIR="$TMP/empty" "$FERRY" list | wc -l)" = 1 ] ||
	fail "ferry list of an empty run directory: $(FERRY_RUN_DIR="$TMP/empty" "$FERRY" list 2>&1)"
"$FERRY" list --all >/dev/null 2>"$TMP/usage.err"; [ $? -eq 2 ] && grep -q "unknown option '--all'" "$TMP/usage.err" || fail "ferry list --all not refused with a usage line"

note "three destinations and a stale socket"
for n in alpha beta gamma; do named $n --incoming "unix:$TMP/$n.in"; done
python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$FERRY_RUN_DIR/gone.sock')"
for n in alpha beta gamma; do listed $n 'v["state"] == "incoming" and v["incoming"] == "waiting" and v["pid"] > 0'; done
listed gone 'v["state"] == "stale"'
[ "$("$FERRY" list | grep -c incoming)" -ge 3 ] || fail "the table lacks the destinations: $("$FERRY" list)"
"$FERRY" status --control beta | grep -q "waiting for an incoming migration" ||
	fail "ferry status --control NAME did not find beta"
[ "$(stat -c %a "$FERRY_RUN_DIR")" = 700 ] || fail "the run directory is not 0700"

if [ -c /dev/kvm ]; then
	note "a VM migrating to one of them"
	"$FERRY" ctl --control gamma quit >/dev/null
	named src --mem 256M --vcpus 2 --workload dirty:wss=64M,rate=40M
	"$FERRY" migrate --control src --to "unix:$TMP/alpha.in" --max-bandwidth 16M --json >/dev/null 2>&1 &
	MIG=$!
	poll_named() { bounded 30 "$1" sh -c "until \"$FERRY\" list --json | grep -q '$2'; do sleep 0.1; done"; }
	poll_named "the migration to show" '"name":"src".*"status":"active"' || fail "no active migration listed"
	listed src 'v["state"] == "running" and v["memory_bytes"] == 256 << 20 and v["vcpus"] == 2'
	listed alpha 'v["incoming"] == "receiving"'
	"$FERRY" ctl --control src migrate-cancel >/dev/null || fail "cancel"
	wait $MIG
	listed src '"migration" in v and v["migration"]["status"] == "cancelled"'
else
	note "no /dev/kvm: the VM that migrates is skipped"
fi
finish list
