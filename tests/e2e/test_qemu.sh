#!/bin/sh
# The ferry guest booted by QEMU (PVH entry, -M microvm, KVM): the same guest
# code that runs under ferry, for side-by-side benchmarks. It must start,
# write pages and find no stale page; its RAM is a shared file, so the test
# reads the guest's status page as ferry does.
set -u
: "${PVH_GUEST:?set PVH_GUEST to ferry-guest-pvh.elf}"
: "${GUEST_PARAMS:?set GUEST_PARAMS to the guest-params tool}"
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -c /dev/kvm ]; then
	echo "SKIP: needs qemu-system-x86_64 (make bench installs it) and /dev/kvm"
	exit 77
fi
dir=$(mktemp -d)
ram=/dev/shm/ferry-qemu-test-$$
trap 'kill $qemu 2>/dev/null; wait 2>/dev/null; rm -rf "$dir" "$ram"' EXIT

"$GUEST_PARAMS" --mem 256M --workload dirty:wss=64M,rate=max,write=byte,spin=on "$dir/params.bin" || exit 1
qemu-system-x86_64 -enable-kvm -M microvm -m 256M -smp 1 -nodefaults -display none -no-reboot \
	-object memory-backend-file,id=ram,size=256M,mem-path="$ram",share=on -machine memory-backend=ram \
	-kernel "$PVH_GUEST" -initrd "$dir/params.bin" -debugcon file:"$dir/console.log" 2>"$dir/qemu.err" &
qemu=$!
for _ in $(seq 100); do grep -q "ferry guest: started" "$dir/console.log" 2>/dev/null && break; sleep 0.05; done
grep -q "ferry guest: started" "$dir/console.log" || { echo "FAIL: the guest did not start: $(cat "$dir/qemu.err")"; exit 1; }
python3 - "$ram" <<'PY'
import mmap, struct, sys, time
ram = open(sys.argv[1], "rb")
m = mmap.mmap(ram.fileno(), 0, prot=mmap.PROT_READ)
status = lambda: struct.unpack_from("<QQQ", m, 0x3000)  # vCPU 0: pages_written, passes, verify_errors
a = status(); time.sleep(0.5); b = status()
assert b[0] > a[0] + 1000, f"no progress: {a} -> {b}"
assert b[2] == 0, f"stale pages: {b}"
print(f"qemu: guest writes {(b[0] - a[0]) * 2} pages/s, no stale page")
PY
