#!/bin/sh
# Runs a command where this host has no /dev/kvm: inside a QEMU machine
# (TCG, so no host KVM is needed) whose emulated AMD CPU has SVM, so that
# machine's kernel loads kvm_amd and ferry runs on real KVM there. The
# machine's root is this host's / over 9p, with its own /tmp and /run.
# Slow (every guest instruction is emulated twice over): for checking
# behaviour, never for timing.
#
#   usage: scripts/nested-kvm.sh [--mem SIZE] [--smp N] COMMAND [ARG...]
# The command runs as root in the current directory; its exit status is ours.
# --smp 1 emulates one CPU on one host thread (slower, no cross-CPU races in
# the emulator); the default is one per host core.
set -eu

usage() {
	echo "usage: scripts/nested-kvm.sh [--mem SIZE] [--smp N] COMMAND [ARG...]" >&2
	exit 2
}

mem=12G
smp=$(nproc)
while [ $# -gt 0 ]; do
	case "$1" in
	--mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
	--smp) [ $# -ge 2 ] && [ "$2" -ge 1 ] 2>/dev/null || usage; smp=$2; shift 2 ;;
	--help|-h) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "nested-kvm: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh" nested
kver=$(ls /lib/modules | sort -V | tail -1)
work=$(mktemp -d /var/tmp/ferry-nested.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The initramfs: busybox, the modules for virtio, 9p and KVM, and an init
# that mounts this host's / and hands over to scripts/nested-init.
mkdir -p "$work/initrd/bin" "$work/initrd/mods" "$work/initrd/proc" "$work/initrd/sys" \
	"$work/initrd/dev" "$work/initrd/newroot"
cp /bin/busybox "$work/initrd/bin/"
for a in sh mount insmod switch_root cat; do ln -s busybox "$work/initrd/bin/$a"; done
order=""
add() {
	for d in $(modinfo -k "$kver" -F depends "$1" | tr , ' '); do add "$d"; done
	case " $order " in *" $1 "*) ;; *) order="$order $1" ;; esac
}
for m in virtio_pci 9pnet_virtio 9p kvm_amd; do add "$m"; done
for m in $order; do
	f=$(modinfo -k "$kver" -F filename "$m")
	cp "$f" "$work/initrd/mods/"
	basename "$f" >>"$work/initrd/mods/order"
done
cat >"$work/initrd/init" <<EOI
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
for f in \$(cat /mods/order); do insmod /mods/\$f; done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /newroot
exec switch_root /newroot $here/scripts/nested-init $work
EOI
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$work/initrd.gz"

# What the machine runs, where, and where it leaves the exit status.
{
	printf 'cd %s || exit 1\n' "$(pwd)"
	printf 'exec'
	for a in "$@"; do printf " '%s'" "$(printf %s "$a" | sed "s/'/'\\\\''/g")"; done
	printf '\n'
} >"$work/cmd"

threads=multi
[ "$smp" -gt 1 ] || threads=single
qemu-system-x86_64 -accel tcg,thread=$threads -smp "$smp" -m "$mem" -cpu max \
	-nographic -no-reboot -monitor none -serial stdio \
	-kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap \
	</dev/null
if [ ! -f "$work/status" ]; then
	echo "nested-kvm: the machine stopped before the command finished" >&2
	exit 1
fi
exit "$(cat "$work/status")"
