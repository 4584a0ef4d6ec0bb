#!/bin/sh
# make demo: run a 1 GiB, 2-vCPU VM whose guest dirties 100 MiB/s, show its
# status, pause and resume it, have the guest check every page, and quit.
# (Live migration between two ferry processes joins this demo when the
# migration engine lands; see the issues.)
set -eu
build=${1:-build}
ferry=$build/src/ferry
dir=$(mktemp -d)
sock=$dir/vm.sock
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

if [ ! -c /dev/kvm ]; then
	echo "demo: /dev/kvm is not available on this machine" >&2
	exit 1
fi
echo "== ferry run --mem 1G --vcpus 2 --workload dirty:wss=512M,rate=100M,pattern=random,write=byte"
"$ferry" run --mem 1G --vcpus 2 --control "$sock" \
	--workload dirty:wss=512M,rate=100M,pattern=random,write=byte &
pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
sleep 3
echo "== ferry status"
"$ferry" status --control "$sock"
echo "== pause (ferry ctl stop), then resume"
"$ferry" ctl --control "$sock" stop
"$ferry" ctl --control "$sock" cont
sleep 1
echo "== the guest checks every page of its working set"
"$ferry" ctl --control "$sock" guest-verify
echo "== ferry ctl quit"
"$ferry" ctl --control "$sock" quit
wait $pid
echo "demo: done. Live migration between two ferry processes is not implemented yet."
