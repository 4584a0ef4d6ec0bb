#!/bin/sh
# make demo: a live migration between two local ferry processes. A 1 GiB,
# 2-vCPU guest (vCPU 0 dirties 100 MiB/s, vCPU 1 computes) moves over TCP on loopback;
# then the report, and the guest's own check of every page on the destination.
set -eu
build=${1:-build}
ferry=$build/src/ferry
dir=$(mktemp -d)
port=$((20000 + $$ % 12000)) # below the ephemeral range: free to listen on
pids=
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$dir"' EXIT

if [ ! -c /dev/kvm ]; then
	echo "demo: /dev/kvm is not available on this machine" >&2
	exit 1
fi
echo "== source: ferry run --mem 1G --vcpus 2 --workload dirty:wss=512M,rate=100M,pattern=random,write=byte,dirtiers=1"
"$ferry" run --mem 1G --vcpus 2 --control "$dir/src.sock" --log-level warn \
	--workload dirty:wss=512M,rate=100M,pattern=random,write=byte,dirtiers=1 &
pids="$pids $!"
echo "== destination: ferry run --incoming tcp:127.0.0.1:$port --mem 1G --prealloc"
echo "   (its memory is faulted in before it listens, so the pages land in ready memory)"
"$ferry" run --incoming "tcp:127.0.0.1:$port" --mem 1G --prealloc --control "$dir/dst.sock" \
	--log-level warn &
pids="$pids $!"
for s in src dst; do
	for _ in $(seq 600); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done
done
sleep 2
echo "== the source before"
"$ferry" status --control "$dir/src.sock"
echo
echo "== ferry migrate --to tcp:127.0.0.1:$port"
"$ferry" migrate --control "$dir/src.sock" --to "tcp:127.0.0.1:$port"
echo
sleep 1
echo "== the destination after"
"$ferry" status --control "$dir/dst.sock"
echo
echo "== the guest checks every page of its working set on the destination"
"$ferry" ctl --control "$dir/dst.sock" guest-verify
"$ferry" ctl --control "$dir/src.sock" quit >/dev/null
"$ferry" ctl --control "$dir/dst.sock" quit >/dev/null
wait
