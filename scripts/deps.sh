#!/bin/sh
# Install the Debian packages ferry needs, only when missing:
#   deps.sh         to build and test
#   deps.sh bench   also to benchmark and plot
#   deps.sh nested  also to run tests in a machine with nested KVM (scripts/nested-kvm.sh)
set -e
PKGS="meson ninja-build pkg-config gcc clang libcmocka-dev libjansson-dev libxxhash-dev
      libzstd-dev liblz4-dev libssl-dev openssl iproute2 python3 help2man bash-completion"
[ "${1:-}" = bench ] && PKGS="$PKGS gnuplot-nox qemu-system-x86"
[ "${1:-}" = nested ] && PKGS="$PKGS qemu-system-x86 busybox-static linux-image-amd64 cpio kmod"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root, or install them yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q $missing >/dev/null
