#!/bin/sh
# Data channels and compression. One guest hops through twelve migrations:
# 1, 2 and 4 channels with each codec (none, lz4, zstd, auto), each codec
# over unix, TCP and a shaped veth between namespaces (a Latin square), each
# with --verify; the destination's account of every channel matches the
# source's. Then: a slow channel that the others overtake (rounds still
# land in order: the guest's check and --verify pass, channels waited at
# the round gate), and a batch corrupted in transit (a clean error naming
# it; the source guest runs on, intact; the destination takes the next one),
# both through tests/e2e/proxy.c, a real connection in between.
. "$(dirname "$0")/lib.sh"
need_kvm
WORKLOAD=dirty:wss=96M,rate=30M,pattern=random,write=page,data=text

# hop FROM TO URI CHANNELS CODEC: migrate, check the report, and the guest.
hop() {
	from=$1 to=$2 uri=$3 ch=$4 codec=$5
	note "$ch channel(s), $codec, $uri"
	migrate "$from" "$uri" --channels "$ch" --compress "$codec" --verify ||
		{ fail "$ch/$codec/$uri: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"; return; }
	[ "$(report "j['verify']")" = ok ] || fail "$ch/$codec: verify"
	check=$(report "check(j, $ch, '$codec')" 2>&1) || fail "$ch/$codec/$uri: $check"
	note "$(report "'%.0f ms, downtime %.1f ms, %d rounds, %.0f MiB sent, codec now %s' % (j['total_ms'], j['downtime_ms'], j['rounds'], j['bytes_sent'] / 2**20, j['pipeline']['compress']['now'])")"
	expect_progress "$to"
}

# The report's pipeline: as many channels as asked, each one's bytes as the
# destination counted them, more than one carrying pages (which ones, and
# how many, is the scheduler's: on a loaded host one worker of 16 may never
# run in time); compressed where asked.
report() {
	python3 - "$TMP/report.json" "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
def check(j, ch, codec):
    p = j["pipeline"]
    chans = p["channels"]
    assert p["data_channels"] == ch, f"{p['data_channels']} data channels"
    assert len(chans) == ch, f"{len(chans)} channel entries"
    used = [c["index"] for c in chans if c["batches"] > 0]
    assert len(used) >= min(ch, 2), f"only channels {used} carried pages"
    for c in chans:
        assert c["dest_bytes"] == c["bytes"], f"channel {c['index']}: sent {c['bytes']}, received {c['dest_bytes']}"
    packed = sum(c["compressed"] for c in chans)
    ratio = sum(c["raw_bytes"] for c in chans) / sum(c["bytes"] for c in chans)
    if codec in ("lz4", "zstd"):
        assert packed > 0 and ratio > 1.5, f"{codec}: {packed} batches compressed, ratio {ratio:.2f}"
        assert sum(c["compress_cpu_ms"] for c in chans) > 0 and sum(c["decompress_cpu_ms"] for c in chans) > 0
    if codec == "none":
        assert packed == 0, f"none compressed {packed} batches"
    assert p["compress"]["asked"] == (codec if codec != "zstd" else "zstd:1")
    return "ok"
print(eval(sys.argv[2]))
PY
}

note "unix and TCP"
vm v0 --mem 256M --vcpus 2 --workload "$WORKLOAD"
i=0
for combo in unix:1:none tcp:1:lz4 unix:1:auto tcp:2:none unix:2:zstd tcp:2:auto unix:4:lz4 tcp:4:zstd; do
	kind=${combo%%:*} rest=${combo#*:}
	ch=${rest%%:*} codec=${rest#*:}
	[ "$kind" = unix ] && uri="unix:$TMP/in$i.sock" || uri="tcp:127.0.0.1:$(port $i)"
	vm "v$((i + 1))" --incoming "$uri"
	hop "v$i" "v$((i + 1))" "$uri" "$ch" "$codec"
	kill_vm "v$i"
	i=$((i + 1))
done
note "16 channels, the most there may be (all join the one listener)"
uri="tcp:127.0.0.1:$(port $i)"
vm "v$((i + 1))" --incoming "$uri"
hop "v$i" "v$((i + 1))" "$uri" 16 none
kill_vm "v$i"
i=$((i + 1))
expect_guest_ok "v$i"
kill_vm "v$i"

note "a round longer than the destination's io-timeout: the data channel hears the source"
# 64 MiB at 16 MiB/s: round 0 keeps the main channel silent for four times
# the destination's timeout (it used to fail there at 10 s by default).
vm long --mem 64M --vcpus 1 --workload idle:data=random
vm long2 --incoming "unix:$TMP/in-long.sock" --io-timeout-ms 1000
migrate long "unix:$TMP/in-long.sock" --channels 1 --max-bandwidth 16M ||
	fail "a long round: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_guest_ok long2
kill_vm long; kill_vm long2

PROXY_PORT=$(port 11) # where tests/e2e/proxy.c listens

note "a slow channel: the others overtake it, rounds still land in order"
# Data channel 0 (the proxy's connection 1) carries 1 MB/s and ends each
# round 100 ms late: its ROUND always arrives after the others', which must
# wait for it at the gate.
vm slow --mem 256M --vcpus 2 --workload dirty:wss=64M,rate=20M,pattern=random,write=page
vm fast --incoming "unix:$TMP/in-slow.sock"
start_proxy "$PROXY_PORT" "unix:$TMP/in-slow.sock" --slow 1:100
migrate slow "tcp:127.0.0.1:$PROXY_PORT" --channels 4 --verify --downtime-ms 1000 ||
	fail "slow channel: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
[ "$(report "j['verify']")" = ok ] || fail "slow channel: verify"
note "$(report "'rounds %d; page payload per channel (MiB) %s; rounds a channel waited for the others %s' % (j['rounds'], [round(c['raw_bytes'] / 2**20, 1) for c in j['pipeline']['channels']], [c['barrier_waits'] for c in j['pipeline']['channels']])")"
[ "$(report "int(sum(c['barrier_waits'] for c in j['pipeline']['channels']) >= j['rounds'])")" = 1 ] ||
	fail "the channels did not wait for the slow one at every round's end"
# Pages, not batches: batches of zero pages cost the slow channel nothing.
[ "$(report "int(all(j['pipeline']['channels'][0]['raw_bytes'] < c['raw_bytes'] for c in j['pipeline']['channels'][1:]))")" = 1 ] ||
	fail "the slow channel was not overtaken: $(report "[c['raw_bytes'] for c in j['pipeline']['channels']]")"
expect_guest_ok fast
kill_vm slow; kill_vm fast; stop_proxy

note "a batch corrupted in transit: a clean error, the source runs on"
vm src --mem 256M --vcpus 2 --workload "$WORKLOAD"
vm dst --incoming "unix:$TMP/in-bad.sock"
# The third record on data channel 0: its JOIN, then its second batch.
start_proxy "$PROXY_PORT" "unix:$TMP/in-bad.sock" --corrupt 1:3
migrate src "tcp:127.0.0.1:$PROXY_PORT" --channels 2 --compress zstd && fail "a corrupted batch was accepted"
[ "$(report "j['status']")" = failed ] || fail "status $(report "j['status']")"
report "j['reason']" | grep -q "destination refused: data channel 0: .*failed its checksum" || fail "reason: $(report "j['reason']")"
note "reason: $(report "j['reason']")"
stop_proxy
expect_progress src
expect_guest_ok src
# Uncompressed, a running guest's raw pages go as LPAGES, a hash per page,
# straight into guest memory: a page that fails its hash waits to be sent
# again, and one the guest never writes again fails the migration at END.
# This guest fills its heap once and never writes it again; the record
# damaged is one of its heap's (from 8 MiB: batch 16 on), on a data
# channel and on the main channel.
vm still --mem 256M --vcpus 1 --workload idle:data=random
for where in "1:40 --channels 1 --compress none" "0:40 --channels 0"; do
	wait_incoming dst
	start_proxy "$PROXY_PORT" "unix:$TMP/in-bad.sock" --corrupt ${where%% *}
	migrate still "tcp:127.0.0.1:$PROXY_PORT" ${where#* } && fail "a damaged page was accepted ($where)"
	report "j['reason']" | grep -q "destination refused: a page arrived damaged and was not sent again (at 0x[0-9a-f]*; 1 in all)" ||
		fail "$where: reason: $(report "j['reason']")"
	stop_proxy
done
[ "$(status_field still "j['status']")" = running ] || fail "still: not running after the failed migrations"
expect_guest_ok still
kill_vm still
expect_progress src
wait_incoming dst
migrate src "unix:$TMP/in-bad.sock" --channels 2 --verify ||
	fail "migration after the corrupt one: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_guest_ok dst
kill_vm src; kill_vm dst

note "a shaped veth (500 Mbit/s)"
need_link 500mbit
SRC_IP=198.18.0.1 DST_IP=198.18.0.2
vm_in src w0 --mem 256M --vcpus 2 --workload "$WORKLOAD"
i=0
for combo in 1:zstd 2:lz4 4:none 4:auto; do
	ch=${combo%%:*} codec=${combo#*:}
	# Hop there and back: the guest ends where it started each time.
	if [ $((i % 2)) = 0 ]; then ns=dst ip=$DST_IP; else ns=src ip=$SRC_IP; fi
	vm_in "$ns" "w$((i + 1))" --incoming "tcp:$ip:4444" # it listens before its socket answers
	hop "w$i" "w$((i + 1))" "tcp:$ip:4444" "$ch" "$codec"
	kill_vm "w$i"
	i=$((i + 1))
done
expect_guest_ok "w$i"
finish channels
