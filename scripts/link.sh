#!/bin/sh
# A test link between two network namespaces, for tests and benchmarks:
#   link.sh up NAME [RATE]   namespaces NAME-src and NAME-dst joined by a veth
#                            pair, 198.18.0.1 <-> 198.18.0.2 (RFC 2544's
#                            benchmarking range, local to this machine),
#                            src->dst shaped to RATE with tc tbf (e.g. 1gbit)
#   link.sh cut NAME         take the link down (no RST: the peer just stalls)
#   link.sh heal NAME        bring it back
#   link.sh down NAME        remove everything
# Needs root and iproute2. Traffic never leaves the two namespaces.
set -eu
cmd=$1 name=$2
src=$name-src dst=$name-dst
vs=$(echo "$name" | cut -c1-10)-s vd=$(echo "$name" | cut -c1-10)-d

case $cmd in
up)
	rate=${3:-}
	ip netns add "$src"
	ip netns add "$dst"
	ip link add "$vs" type veth peer name "$vd"
	ip link set "$vs" netns "$src"
	ip link set "$vd" netns "$dst"
	ip -n "$src" addr add 198.18.0.1/30 dev "$vs"
	ip -n "$dst" addr add 198.18.0.2/30 dev "$vd"
	for ns in "$src" "$dst"; do ip -n "$ns" link set lo up; done
	ip -n "$src" link set "$vs" up
	ip -n "$dst" link set "$vd" up
	if [ -n "$rate" ]; then
		# burst: at least rate/HZ; 1 MiB keeps 10 Gbit/s honest too
		ip netns exec "$src" tc qdisc add dev "$vs" root tbf rate "$rate" burst 1mb latency 100ms
	fi
	;;
cut) ip -n "$src" link set "$vs" down ;;
heal) ip -n "$src" link set "$vs" up ;;
down)
	ip netns del "$src" 2>/dev/null || true
	ip netns del "$dst" 2>/dev/null || true
	;;
*)
	echo "usage: link.sh up|cut|heal|down NAME [RATE]" >&2
	exit 2
	;;
esac
