#!/bin/sh
# Live migration of a running 2-vCPU dirtying guest over unix and TCP, then
# ping-pong A->B->A->B: each time --verify and the guest's self-check pass on
# the destination, the guest keeps making progress there, and the source is
# left in postmigrate. The first migration follows a forecast (ferry
# predict), and its report sets the forecast beside what happened; a guest
# never measured gets none, and the report says why.
. "$(dirname "$0")/lib.sh"
need_kvm

WORKLOAD=dirty:wss=128M,rate=40M,pattern=random,write=byte

one_migration() { # SRC DST URI
	vm "$2" --incoming "$3"
	migrate "$1" "$3" --verify || fail "$1 -> $2 over $3: $(cat "$TMP/migrate.err") $(cat "$TMP/report.json")"
	[ "$(report "j['status']")" = completed ] || fail "$1 -> $2: status $(report "j['status']")"
	[ "$(report "j['verify']")" = ok ] || fail "$1 -> $2: verify $(report "j['verify']")"
	python3 - "$TMP/report.json" "$1" <<'PY' || fail "report fields: $(cat "$TMP/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("total_ms", "downtime_ms", "setup_ms", "rounds", "bytes_sent", "bandwidth_bps"):
    assert r[k] > 0, k
assert r["pages"]["raw"] > 0 and r["pages"]["zero"] > 0, r["pages"]
assert r["downtime_ms"] < r["total_ms"]
# Round by round: round 0 sends all 65536 pages, each round sends what the
# one before left dirty, and the last (paused) leaves nothing.
log = r["round_log"]
assert len(log) == min(r["rounds"], 32) and r["rounds"] >= 2, log
assert log[0]["pages"] == 65536 and log[-1]["dirtied"] == 0, log
assert all(b["pages"] >= a["dirtied"] for a, b in zip(log, log[1:])), log
f = r["forecast"]
if sys.argv[2] == "a":
    assert f["converges"] and f["total_ms"] > 0 and 0 <= f["measured_s_ago"] < 600, f
    assert f["link_bps"] == 125e6 and f["rounds"] == len(f["round_log"]), f
else:
    assert f["reason"].startswith("no dirty-rate measurement yet"), f
PY
	expect_progress "$2"
	expect_guest_ok "$2"
	[ "$(status_field "$1" "j['status']")" = postmigrate ] || fail "$1 should be postmigrate"
	ctl "$1" cont >/dev/null 2>&1 && fail "$1: cont after a completed migration was allowed"
	ctl "$1" quit >/dev/null
}

note "unix socket"
vm a --mem 256M --vcpus 2 --workload "$WORKLOAD"
sleep 1
bounded 60 "ferry predict" "$FERRY" predict --control "$(sock a)" --link 1Gbit --seconds 1 >/dev/null ||
	fail "ferry predict"
one_migration a b "unix:$TMP/mig-ab.sock"

note "TCP on loopback"
PORT=$(port 0)
one_migration b c "tcp:127.0.0.1:$PORT"

# Each hop starts a new ferry on the destination "host", as a real ping-pong
# does: host A listens on a unix socket, host B on TCP.
note "ping-pong A -> B -> A -> B"
HOST_A="unix:$TMP/host-a.sock" HOST_B="tcp:127.0.0.1:$((PORT + 1))"
one_migration c d "$HOST_B"
one_migration d e "$HOST_A"
one_migration e f "$HOST_B"
expect_guest_ok f
ctl f quit >/dev/null
finish migrate
