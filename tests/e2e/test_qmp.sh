#!/bin/sh
# QMP on the control socket: the QMP client the bench drives QEMU with
# (bench/qemu.py's Qmp, unchanged) talks to ferry. Without KVM: the greeting,
# capabilities, query-version, query-commands, QMP's parameter and capability
# names both ways, refusals with a sentence, and a destination's MIGRATION
# events for a source that sends garbage (none for a client that never sent
# qmp_capabilities). With KVM: that client drives
# a migration to completion and another to a cancel, while a second client
# sees the MIGRATION, STOP and RESUME events.
. "$(dirname "$0")/lib.sh"
BENCH="$(dirname "$0")/../../bench"

# qmp NAME PYTHON: run PYTHON with q, a Qmp client of NAME's control socket.
qmp() {
	bounded 120 "the QMP client on $1" python3 - "$BENCH" "$(sock "$1")" "$2" <<'PY'
import json, socket, sys, threading
sys.path.insert(0, sys.argv[1])
from qemu import Qmp

class Events:
    """A second client that only listens: the events, in order."""
    def __init__(self, path):
        s = socket.socket(socket.AF_UNIX); s.connect(path); self.f = s.makefile("rw")
        self.greeting = json.loads(self.f.readline())
        self.f.write('{"execute": "qmp_capabilities"}\n'); self.f.flush()
        self.seen = []
        threading.Thread(target=self.read, daemon=True).start()
    def wait(self, event, secs=30):
        """Until event (a (name, status) pair) came: bounded."""
        import time
        end = time.time() + secs
        while event not in self.seen and time.time() < end:
            time.sleep(0.02)
        assert event in self.seen, f"no {event} in {secs} s: {self.seen}"
    def read(self):
        for line in self.f:
            m = json.loads(line)
            if "event" in m:
                self.seen.append((m["event"], m.get("data", {}).get("status")))

def refused(q, name, words, **args):
    try:
        q(name, **args)
    except RuntimeError as e:
        assert words in str(e), f"{name} {args}: said {e}"
        return
    raise AssertionError(f"{name} {args} was accepted")

def wait_for(q, statuses, secs=60):
    import time
    end = time.time() + secs
    while time.time() < end:
        r = q("query-migrate")
        if r["status"] in statuses:
            return r
        time.sleep(0.05)
    raise AssertionError(f"query-migrate still says {r['status']} after {secs} s")

q = Qmp(sys.argv[2])
exec(sys.argv[3])
PY
}

note "a destination without a guest: greeting, commands, parameters"
vm dst --incoming "unix:$TMP/in.sock"
qmp dst '
g = Events(sys.argv[2]).greeting
assert g["QMP"]["version"]["package"].startswith("ferry "), g
assert g["ferry"]["protocol"] == 2, g
v = q("query-version")
assert v["qemu"]["major"] >= 0 and v["package"].startswith("ferry"), v
names = {c["name"] for c in q("query-commands")}
for c in ("qmp_capabilities", "query-commands", "query-version", "query-status", "query-migrate",
          "query-migrate-parameters", "migrate-set-parameters", "migrate_cancel", "migrate",
          "migrate-set-capabilities"):
    assert c in names, c
s = q("query-status")
assert s["status"] == "incoming" and s["running"] is False, s
assert q("query-migrate")["status"] == "none"
q("migrate-set-capabilities", capabilities=[{"capability": "xbzrle", "state": True},
                                            {"capability": "multifd", "state": True}])
q("migrate-set-parameters", **{"downtime-limit": 50, "max-bandwidth": 10**9, "multifd-channels": 4,
                               "xbzrle-cache-size": 32 << 20})
p = q("query-migrate-parameters")
assert p["downtime-limit"] == p["downtime-ms"] == 50, p
assert p["multifd-channels"] == p["channels"] == 4, p
assert p["xbzrle-cache-size"] == p["xbzrle-cache-bytes"] == 32 << 20, p
assert p["max-bandwidth"] == p["max-bandwidth-bps"] == 10**9, p
caps = {c["capability"]: c["state"] for c in q("query-migrate-capabilities")}
assert caps["xbzrle"] and caps["multifd"] and not caps["postcopy-ram"], caps
q("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": False}])
assert q("query-migrate-parameters")["channels"] == 0
refused(q, "migrate-set-parameters", "no parameter \x27announce-rounds\x27", **{"announce-rounds": 5})
refused(q, "migrate-set-parameters", "given twice", **{"downtime-limit": 5, "downtime-ms": 6})
refused(q, "migrate-set-parameters", "downtime-ms must be", **{"downtime-limit": 0})
assert q("query-migrate-parameters")["downtime-ms"] == 50, "a refused change took effect"
q("migrate-set-parameters", **{"timeout": 90, "throttle-max": 80})  # older names of ferry
p = q("query-migrate-parameters")
assert p["timeout-s"] == 90 and p["throttle-max-pct"] == p["max-cpu-throttle"] == 80, p
assert "timeout" not in p and "throttle-max" not in p, p
refused(q, "migrate-set-capabilities", "ferry has no capability \x27zero-blocks\x27",
        capabilities=[{"capability": "zero-blocks", "state": True}])
refused(q, "query-status", "takes no arguments", verbose=True)
refused(q, "migrate", "no VM runs here", uri="unix:/nonexistent")
refused(q, "migrate_cancel", "no migration is running")
# A source that sends garbage: this side'"'"'s MIGRATION events.
import os, subprocess
ev = Events(sys.argv[2])
plain = socket.socket(socket.AF_UNIX); plain.connect(sys.argv[2]); pf = plain.makefile("rw")
pf.readline()  # a client that never sends qmp_capabilities gets no events
subprocess.run([os.environ["BAD_SOURCE"], "garbage", "unix:'"$TMP/in.sock"'"],
               capture_output=True, timeout=60)
ev.wait(("MIGRATION", "failed"))
assert ev.seen == [("MIGRATION", "active"), ("MIGRATION", "failed")], ev.seen
pf.write(json.dumps({"execute": "query-version"}) + "\n"); pf.flush()
first = json.loads(pf.readline())
assert "return" in first, f"a client without qmp_capabilities was sent {first}"
' || fail "QMP without a guest"

if [ ! -c /dev/kvm ]; then
	note "no /dev/kvm: the QMP-driven migrations are skipped"
	finish qmp
fi

note "the bench's QMP client migrates a guest, and sees the events"
vm src --mem 128M --vcpus 2 --workload dirty:wss=32M,rate=20M
qmp src '
ev = Events(sys.argv[2])
q("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": True}])
q("migrate-set-parameters", **{"downtime-limit": 300, "multifd-channels": 2})
q("migrate", uri="unix:'"$TMP/in.sock"'")
r = wait_for(q, ("completed", "failed", "cancelled", "unknown"))
assert r["status"] == "completed", r
assert r["ram"]["transferred"] > 0 and r["total-time"] >= r["setup-time"] >= 0, r
assert "downtime" in r and r["ram"]["dirty-sync-count"] >= 1, r
ev.wait(("MIGRATION", "completed"))
kinds = [e for e in ev.seen if e[0] in ("MIGRATION", "STOP")]
assert ("MIGRATION", "setup") in kinds and kinds[-1] == ("MIGRATION", "completed"), ev.seen
assert ("STOP", None) in kinds, ev.seen
assert q("query-status")["running"] is False
' || fail "QMP-driven migration"
expect_guest_ok dst
qmp dst 'assert q("query-status")["running"] is True' || fail "the destination does not run the guest"

note "the bench's QMP client cancels a migration; the guest runs on"
ctl src quit >/dev/null
ctl dst quit >/dev/null
vm src --mem 256M --vcpus 2 --workload dirty:wss=64M,rate=40M
vm dst --incoming "unix:$TMP/in.sock"
qmp src '
ev = Events(sys.argv[2])
q("migrate-set-parameters", **{"max-bandwidth": 8 << 20, "downtime-limit": 1})
q("migrate", uri="unix:'"$TMP/in.sock"'", detach=True)
wait_for(q, ("active",))
q("migrate_cancel")
r = wait_for(q, ("cancelled", "failed", "completed"))
assert r["status"] == "cancelled", r
ev.wait(("MIGRATION", "cancelled"))
assert ev.seen and ev.seen[-1] == ("MIGRATION", "cancelled"), ev.seen
assert q("query-status")["running"] is True
' || fail "QMP-driven cancel"
expect_progress src
expect_guest_ok src
finish qmp
