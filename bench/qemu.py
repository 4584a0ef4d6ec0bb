"""QEMU side of the side-by-side benchmarks: the ferry guest booted by QEMU
(PVH, -M microvm, KVM), migrated by QEMU's own live migration over QMP with
the scenario's parameters. Imported by bench/run."""
import json, os, socket, subprocess, time

# QEMU's defaults (max-bandwidth 128 MiB/s, downtime-limit 300 ms) are always
# set explicitly; "unlimited" becomes this.
UNLIMITED_BPS = 1 << 40


class Qmp:
    def __init__(self, path):
        for _ in range(200):
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.025)
        self.f = self.sock.makefile("rw")
        self.f.readline()
        self("qmp_capabilities")

    def __call__(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']['desc']}")


# Where the guest keeps what the bench reads (src/guest/abi.h).
PARAMS_TSC_KHZ = 0x1000 + 24          # struct ferry_params.tsc_khz
CONTROL_STALL_EPOCH = 0x2000 + 8 * 259  # struct ferry_control.stall_epoch
STATUS = 0x3000                       # struct ferry_vcpu_status of vCPU 0
STALLS = 0x9000                       # struct ferry_vcpu_stalls of vCPU 0
STALL_RING = 6


class QemuSide:
    def __init__(self, link, side, name, tmp, guest, params_file, pvh, incoming=None, prealloc=False, ram=None,
                 tls=None):
        self.ram = ram or f"/dev/shm/ferry-bench-{os.getpid()}-{name}"
        self.qmp_path = os.path.join(tmp, name + ".qmp")
        backend = f"memory-backend-file,id=ram,size={guest['mem']},mem-path={self.ram},share=on"
        if prealloc:  # what -mem-prealloc does, for this backend
            backend += ",prealloc=on"
        argv = ["qemu-system-x86_64", "-enable-kvm", "-M", "microvm", "-m", guest["mem"], "-smp", "1",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-object", backend,
                "-machine", "memory-backend=ram", "-kernel", pvh, "-initrd", params_file,
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if tls:  # x509 from tls (a directory), the destination the server
            argv += ["-object", f"tls-creds-x509,id=tls0,dir={tls},endpoint={'server' if incoming else 'client'}"]
        if incoming:  # with TLS it listens once told its credentials (configure)
            argv += ["-incoming", "defer" if tls else incoming]
        self.proc = subprocess.Popen(link.cmd(side, argv), stderr=open(os.path.join(tmp, name + ".err"), "w"))
        self.qmp = Qmp(self.qmp_path)

    def status_page(self):
        """vCPU 0's pages_written, verify_errors and filled flag (guest/abi.h:
        struct ferry_vcpu_status at 0x3000), from the shared RAM file."""
        import mmap, struct
        with open(self.ram, "rb") as ram:
            m = mmap.mmap(ram.fileno(), 0, prot=mmap.PROT_READ)
            written, _, errors = struct.unpack_from("<QQQ", m, 0x3000)
            filled, = struct.unpack_from("<Q", m, 0x3000 + 64)
            m.close()
        return written, errors, filled

    def _map(self, write=False):
        import mmap
        f = open(self.ram, "r+b" if write else "rb")
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | (mmap.PROT_WRITE if write else 0))
        f.close()
        return m

    def reset_stalls(self):
        """What ferry's source does as a migration starts: each vCPU's
        longest stall starts anew (the guest sees the new epoch)."""
        import struct
        m = self._map(write=True)
        epoch, = struct.unpack_from("<Q", m, CONTROL_STALL_EPOCH)
        struct.pack_into("<Q", m, CONTROL_STALL_EPOCH, epoch + 1)
        m.close()

    def stalls(self):
        """vCPU 0's stall slot: last beat, longest stall, count, ring; and the TSC kHz."""
        import struct
        m = self._map()
        khz, = struct.unpack_from("<Q", m, PARAMS_TSC_KHZ)
        last, _, longest, count = struct.unpack_from("<QQQQ", m, STALLS)
        ring = [struct.unpack_from("<QQ", m, STALLS + 32 + 16 * i) for i in range(STALL_RING)]
        heartbeat, = struct.unpack_from("<Q", m, STATUS + 24)
        m.close()
        return {"khz": khz, "last": last, "max": longest, "count": count, "ring": ring, "heartbeat": heartbeat}

    def finish(self):
        try:
            self.qmp("quit")
        except Exception:
            self.proc.kill()
        try:
            _, _, ru = os.wait4(self.proc.pid, 0)
            self.proc.returncode = 0
            cpu = ru.ru_utime + ru.ru_stime
        except ChildProcessError:
            cpu = None
        if os.path.exists(self.ram):
            os.unlink(self.ram)
        return cpu


def size_bytes(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = str(text).upper().rstrip("B").rstrip("I")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def rate_bps(text):
    """ferry's --max-bandwidth: 100M (bytes per second) or 1Gbit (bits)."""
    text = str(text)
    if text.lower().endswith("bit"):
        unit = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-4].lower())
        return int(float(text[:-4] if unit else text[:-3]) * (unit or 1) / 8)
    return size_bytes(text)


def felt(src, dst):
    """What the guest felt, read as ferry's destination reads it
    (vm/guest_status.c): the first stall at or after vCPU 0's last beat
    before the pause (the paused source's RAM keeps it), once the vCPU has
    beaten well past it; and the longest stall since the migration began."""
    beat = src.stalls()["last"]
    for _ in range(200):
        b = dst.stalls()
        if not beat or not b["khz"]:
            return {}
        if b["heartbeat"] > beat + b["khz"]:  # 1 ms, the guest's threshold
            after = sorted((start, length) for start, length in b["ring"] if start >= beat)
            gap = after[0][1] if after else 0
            return {"guest_gap_ms": gap / b["khz"], "guest_stall_max_ms": b["max"] / b["khz"]}
        time.sleep(0.005)
    return {}


def configure(src, dst, mig, multifd=0, shared=False, tls_uri=None):
    """QEMU's equivalents of the scenario's migration parameters. Its
    defaults (max-bandwidth 128 MiB/s, downtime-limit 300 ms) are always
    overridden; "unlimited" is UNLIMITED_BPS. multifd: that many channels
    even where ferry's scenario asks for none."""
    params = {"downtime-limit": int(mig.get("downtime-ms", 300)),
              "max-bandwidth": rate_bps(mig["max-bandwidth"]) if "max-bandwidth" in mig else UNLIMITED_BPS}
    caps = []
    if "xbzrle" in mig:
        caps.append("xbzrle")
        params["xbzrle-cache-size"] = size_bytes(mig["xbzrle"])
    if "channels" in mig or "compress" in mig or multifd:
        caps.append("multifd")
        params["multifd-channels"] = int(multifd or mig.get("channels", 1))
        codec = mig.get("compress", "none")
        if codec not in ("none", "zstd", "zlib"):
            raise ValueError(f"QEMU multifd has no '{codec}' compression")
        params["multifd-compression"] = codec
    if mig.get("converge") in ("throttle", "auto-converge"):
        caps.append("auto-converge")
    if mig.get("postcopy"):
        caps.append("postcopy-ram")
    if shared:
        caps.append("x-ignore-shared")
    if caps:
        for side in (src, dst):  # both ends must agree on stream-shaping capabilities
            side.qmp("migrate-set-capabilities",
                     capabilities=[{"capability": c, "state": True} for c in caps])
        dst.qmp("migrate-set-parameters", **{k: v for k, v in params.items()
                                              if k.startswith("multifd")})
    if tls_uri:  # both ends speak TLS; the destination listens only now
        dst.qmp("migrate-set-parameters", **{"tls-creds": "tls0"})
        dst.qmp("migrate-incoming", uri=tls_uri)
        params.update({"tls-creds": "tls0", "tls-hostname": "ferry-dest"})
    src.qmp("migrate-set-parameters", **params)


def run_once(build, sc, link, tmp, prealloc=False, multifd=0, shared=False, ruler=None, tls=None):
    """One QEMU migration; returns a report shaped like ferry's. prealloc:
    the destination's memory is allocated before it listens (-mem-prealloc);
    multifd: channels; shared: both map the source's RAM file and skip it
    (x-ignore-shared: QEMU's local migration); ruler: measures a plain copy
    once the guest runs; tls: x509 credentials (a directory) for both."""
    g, mig = sc["guest"], sc.get("migration", {})
    params = os.path.join(tmp, "qemu-params.bin")
    subprocess.run([os.path.join(build, "bench", "guest-params"), "--mem", g["mem"], "--workload",
                    g["workload"], params], check=True)
    pvh = os.path.join(build, "src", "guest", "ferry-guest-pvh.elf")
    uri = link.uri()
    src = QemuSide(link, "src", "qsrc", tmp, g, params, pvh, tls=tls)
    dst = QemuSide(link, "dst", "qdst", tmp, g, params, pvh, incoming=uri, prealloc=prealloc,
                   ram=src.ram if shared else None, tls=tls)
    try:
        for _ in range(1200):  # the guest's initial fill, then as long as ferry's side waits
            if src.status_page()[2]:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        loaded = ruler() if ruler else None
        configure(src, dst, mig, multifd, shared, tls_uri=uri if tls else None)
        src.reset_stalls()
        src.qmp("migrate", uri=uri)
        deadline = time.time() + int(mig.get("timeout", 600))
        postcopy_started = timed_out = False
        while True:
            r = src.qmp("query-migrate")
            if r.get("status") in ("completed", "failed", "cancelled"):
                break
            # Like an operator would: post-copy once the first full pass is done.
            if mig.get("postcopy") and not postcopy_started and r.get("ram", {}).get("dirty-sync-count", 0) >= 2:
                src.qmp("migrate-start-postcopy")
                postcopy_started = True
            if time.time() > deadline and not timed_out:
                src.qmp("migrate_cancel")
                timed_out = True
            time.sleep(0.05)
        ok = r.get("status") == "completed"
        guest = felt(src, dst) if ok else {}
        if ok:
            time.sleep(0.5)
            a = dst.status_page()
            time.sleep(0.5)
            b = dst.status_page()
            ok = b[0] > a[0] and b[1] == 0
        report = {"status": "completed" if ok else r.get("status", "failed"),
                  "total_ms": r.get("total-time", 0), "downtime_ms": r.get("downtime", 0),
                  "setup_ms": r.get("setup-time", 0), "bytes_sent": r.get("ram", {}).get("transferred", 0),
                  "rounds": r.get("ram", {}).get("dirty-sync-count", 0), "qemu": r,
                  "xbzrle_cache_miss_rate": r.get("xbzrle-cache", {}).get("cache-miss-rate"), **guest}
        if not ok and r.get("status") == "completed":
            report["reason"] = "the guest did not run cleanly on the destination"
        elif timed_out:
            report["reason"] = f"did not converge in {mig.get('timeout')} s (the bench cancelled it)"
    finally:
        cpu_src, cpu_dst = src.finish(), dst.finish()
    return {"report": report, "cpu_s": {"src": cpu_src, "dst": cpu_dst}, "socket_copy_loaded_bps": loaded}
