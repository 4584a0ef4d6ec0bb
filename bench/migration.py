#!/usr/bin/env python3
"""Migration benchmarks (the pre-copy issue), run side by side in one go:

  idle     1 GiB idle guest (random data) over loopback TCP and unix:
           throughput as a fraction of a plain socket copy measured in the
           same run, total time, downtime.
  dirty    1 GiB guest dirtying 100 MiB/s (random pages, byte writes):
           total time and downtime, unlimited (loopback TCP) and over a veth
           shaped to 1 Gbit/s (needs root), with the downtime breakdown.

Usage: bench/migration.py [--build build] [--reps N] [--json FILE] [idle] [dirty]
Prints medians (min-max) per scenario; one JSON line per run with --json.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = os.path.join(ROOT, "scripts", "link.sh")


class Run:
    """One source, one destination, one migration; everything killed after."""

    def __init__(self, ferry, tmp, ns=None):
        self.ferry, self.tmp, self.ns, self.procs = ferry, tmp, ns, []

    def start(self, name, args, ns=None):
        sock = os.path.join(self.tmp, name + ".sock")
        cmd = [self.ferry, "run", "--control", sock, "--log-level", "warn"] + args
        if ns:
            cmd = ["ip", "netns", "exec", ns] + cmd
        self.procs.append(subprocess.Popen(cmd, stderr=open(os.path.join(self.tmp, name + ".log"), "w")))
        for _ in range(400):
            if os.path.exists(sock):
                return sock
            time.sleep(0.025)
        raise RuntimeError(f"{name} did not start: " + open(os.path.join(self.tmp, name + ".log")).read())

    def ctl(self, sock, command):
        out = subprocess.run([self.ferry, "ctl", "--control", sock, command], capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def wait_filled(self, sock):
        # The guest has written its working set once when passes >= 1 on every vCPU.
        for _ in range(600):
            st = self.ctl(sock, "query-status")
            if st and all(v["passes"] >= 1 for v in st["guest"]["per_vcpu"]):
                return
            time.sleep(0.05)

    def migrate(self, src, uri, extra):
        out = subprocess.run([self.ferry, "migrate", "--control", src, "--to", uri, "--json"] + extra,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()


def sockcopy(build, uri, ns=None):
    cmd = [os.path.join(build, "bench", "sockcopy"), uri, "1G"]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout) * 1e6  # bytes/s


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one(args, tmp, workload, uri_of, ns_src=None, ns_dst=None, extra=()):
    r = Run(os.path.join(args.build, "src", "ferry"), tmp)
    try:
        uri = uri_of()
        src = r.start("src", ["--mem", "1G", "--vcpus", "2", "--workload", workload], ns_src)
        r.start("dst", ["--incoming", uri], ns_dst)
        r.wait_filled(src)
        time.sleep(0.5)
        return r.migrate(src, uri, list(extra))
    finally:
        r.close()


def summary(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, unit="", prec=0):
    m, lo, hi = summary(values)
    return f"{m:.{prec}f}{unit} ({lo:.{prec}f}-{hi:.{prec}f})"


def record(args, scenario, rep, report, extra=None):
    row = {"bench": "migration", "scenario": scenario, "rep": rep, **(extra or {}), "report": report}
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")
    if report["status"] != "completed":
        print(f"   {scenario} run {rep}: {report['status']}: {report.get('reason')}", file=sys.stderr)


def bench_idle(args, tmp):
    print("\n== Idle 1 GiB guest (random data), 2 vCPUs")
    print(f"{'transport':10} {'socket copy MB/s':>18} {'migration MB/s':>22} {'fraction':>9} {'total ms':>20} {'downtime ms':>18}")
    for name, uri_of in (("tcp", lambda: f"tcp:127.0.0.1:{free_port()}"),
                         ("unix", lambda: f"unix:{tmp}/mig.sock")):
        copy, bw, total, down = [], [], [], []
        for rep in range(args.reps):
            copy.append(sockcopy(args.build, uri_of()))
            rpt = one(args, tmp, "idle:data=random", uri_of)
            record(args, f"idle-{name}", rep, rpt, {"socket_copy_bps": copy[-1]})
            # Throughput of the pages themselves: round 0 moves all memory.
            bw.append(rpt["bytes_sent"] / ((rpt["total_ms"] - rpt["setup_ms"]) / 1e3))
            total.append(rpt["total_ms"])
            down.append(rpt["downtime_ms"])
        frac = [b / c for b, c in zip(bw, copy)]
        print(f"{name:10} {fmt([c / 1e6 for c in copy]):>18} {fmt([b / 1e6 for b in bw]):>22} "
              f"{statistics.median(frac):>8.0%} {fmt(total):>20} {fmt(down, '', 1):>18}")


def breakdown(reports):
    keys = ["pause_ms", "final_sync_ms", "final_pages_ms", "state_ms", "handoff_ms", "resume_ms"]
    return "  ".join(f"{k[:-3]} {statistics.median(r['phases'][k] for r in reports):.1f}" for k in keys)


def bench_dirty(args, tmp):
    print("\n== 1 GiB guest dirtying 100 MiB/s (random pages, byte writes), 2 vCPUs, downtime limit 300 ms")
    print(f"{'link':12} {'total ms':>22} {'downtime ms':>20} {'rounds':>7} {'expected ms':>12}")
    links = [("unlimited", None)]
    if os.geteuid() == 0 and shutil.which("tc"):
        links.append(("1 Gbit/s", "1gbit"))
    else:
        print("   (1 Gbit/s link skipped: needs root and tc)")
    for label, rate in links:
        name = f"fb{os.getpid() % 10000}"
        ns_src = ns_dst = None
        if rate:
            subprocess.run([LINK, "up", name, rate], check=True)
            ns_src, ns_dst = name + "-src", name + "-dst"
        try:
            reports = []
            for rep in range(args.reps):
                port = free_port()
                host = "198.18.0.2" if rate else "127.0.0.1"
                rpt = one(args, tmp, "dirty:wss=512M,rate=100M,pattern=random,write=byte",
                          lambda: f"tcp:{host}:{port}", ns_src, ns_dst, ["--downtime-ms", "300"])
                record(args, f"dirty-100MiBs-{label}", rep, rpt)
                reports.append(rpt)
            ok = [r for r in reports if r["status"] == "completed"]
            if not ok:
                print(f"{label:12} no run completed")
                continue
            print(f"{label:12} {fmt([r['total_ms'] for r in ok]):>22} {fmt([r['downtime_ms'] for r in ok], '', 1):>20} "
                  f"{statistics.median(r['rounds'] for r in ok):>7.0f} "
                  f"{statistics.median(r['expected_downtime_ms'] for r in ok):>12.1f}")
            print(f"{'':12} downtime parts (median ms): {breakdown(ok)}")
        finally:
            if rate:
                subprocess.run([LINK, "down", name])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("parts", nargs="*", default=["idle", "dirty"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ferry-bench-")
    try:
        if "idle" in args.parts:
            bench_idle(args, tmp)
        if "dirty" in args.parts:
            bench_dirty(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
