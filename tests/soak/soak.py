#!/usr/bin/env python3
"""Fault soak: ping-pong live migrations of a running guest between two ferry
processes, with a fault at a random point of each (not part of make test).

Faults: on the link, through tests/e2e/proxy.c --fault at a random record of
a random connection and direction: a cut (FIN), a reset (RST of every
connection), a stall, a corrupted byte; or kill -9 of the source or the
destination at a phase: setup, round 0, a later round, switchover before
LOADED, between LOADED and COMMIT (each side's view), after COMMIT.

After each migration the soak checks what an operator relies on: the guest
runs on exactly one side and its self-check is clean; or the source says
unknown and is settled (ferry migrate-resolve; with the destination killed,
the operator who fenced it resumes the source with cont force); or the guest
went with the only process that held it (the source killed before COMMIT
reached the destination, which discarded its copy; or the destination
killed after the migration completed). A new
guest then replaces a lost one. At the end: counts per fault and outcome,
and the fd and RSS growth of every process that lived through 10 migrations
or more.

usage: tests/soak/soak.py [--build DIR] [--runs N] [--seed S] [--keep] [--mem-mib N]
                          [--only FAULT[:PHASE][,FAULT[:PHASE]...]]
Exit status: 0 every check held, 1 a check failed (the log says which), 2 usage.
"""
import argparse, collections, json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, time

VCPUS = 2
REC_STATE, REC_COMMIT, REC_LOADED, REC_RESUMED = 4, 7, 16, 17
KILL_PHASES = ["setup", "round0", "round", "before-loaded", "loaded-held", "commit-held", "resumed-held"]
HOLD = {"before-loaded": REC_STATE, "loaded-held": REC_LOADED, "commit-held": REC_COMMIT,
        "resumed-held": REC_RESUMED}


class Violation(Exception):
    pass


class Stopped(Exception):
    pass


def ctl(sock, cmd, args=None, timeout=30):
    """One command on a control socket: its return, or raise with its error.
    (Without qmp_capabilities no event comes: the next line is the answer.)"""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock)
        f = s.makefile("rw")
        f.readline()  # the greeting
        f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n")
        f.flush()
        line = f.readline()
    if not line:
        raise ConnectionError(f"{sock} closed before answering {cmd}")
    m = json.loads(line)
    if "error" in m:
        raise RuntimeError(m["error"]["desc"])
    return m["return"]


def poll(what, fn, secs=60):
    end = time.time() + secs
    while time.time() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.05)
    raise Violation(f"waited {secs} s for {what}")


class Side:
    """One slot: a ferry process (restarted after kill -9), its socket and log."""

    def __init__(self, name, soak):
        self.name, self.soak = name, soak
        self.sock = os.path.join(soak.tmp, f"{name}.sock")
        self.inuri = "unix:" + os.path.join(soak.tmp, f"{name}.in")
        self.proc, self.born, self.samples = None, 0, []
        self.received = False  # holds a guest that came by migration

    def start(self, *args):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        log = open(os.path.join(self.soak.tmp, f"{self.name}.log"), "a")
        self.proc = subprocess.Popen([self.soak.ferry, "run", "--control", self.sock, *args], stderr=log)
        self.born, self.samples, self.received = self.soak.i, [], False
        poll(f"{self.name}'s control socket", lambda: os.path.exists(self.sock), 10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def status(self):
        """query-status, or None once the process is gone. A ferry that is
        exiting has already removed its socket: wait for it to end."""
        if not self.alive():
            return None
        try:
            return ctl(self.sock, "query-status")
        except (FileNotFoundError, ConnectionRefusedError):
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise Violation(f"{self.name} runs without its control socket")
            print(f"      {self.name} ended by itself with status {rc}: {self.log_tail()}", flush=True)
            return None

    def log_tail(self):
        with open(os.path.join(self.soak.tmp, f"{self.name}.log")) as f:
            return " | ".join(f.read().strip().splitlines()[-3:])

    def runs_guest(self):
        st = self.status()
        return bool(st) and st["status"] in ("running", "paused") and "guest" in st

    def sample(self, role):
        """fds (what each points to) and RSS (KiB) now: the fewest fds of three
        looks, since the control connection just closed may not be closed on
        ferry's side yet."""
        pid, looks = self.proc.pid, []
        for _ in range(3):
            fds = {}
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    fds[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    pass  # closed while we looked
            looks.append(fds)
            time.sleep(0.05)
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
        self.samples.append((self.soak.i, role, min(looks, key=len), rss))


class Soak:
    def __init__(self, a):
        self.ferry = os.path.join(a.build, "src", "ferry")
        self.proxy_bin = os.path.join(a.build, "tests", "proxy")
        self.rng, self.seed, self.runs, self.keep = random.Random(a.seed), a.seed, a.runs, a.keep
        self.mem_mib = a.mem_mib
        self.only = [f.partition(":")[::2] for f in a.only.split(",")] if a.only else []  # (kind, phase)
        self.tmp = tempfile.mkdtemp(prefix="ferry-soak.")
        self.i, self.counts, self.failures = 0, collections.Counter(), []
        self.sides = [Side("a", self), Side("b", self)]
        self.retired = []  # (side name, samples) of processes that ended

    # -- set-up ------------------------------------------------------------
    def new_guest(self, side):
        if side.alive():
            self.retire(side)
        mib = self.mem_mib  # a quarter of it dirtied at 40 MiB/s
        side.start("--mem", f"{mib}M", "--vcpus", str(VCPUS), "--workload", f"dirty:wss={mib // 4}M,rate=40M")
        poll("the guest to run", side.runs_guest, 30)

    def retire(self, side):
        if side.alive():
            side.kill()
        self.retired.append((side.name, side.born, side.samples))

    def make_destination(self, side):
        """side waits for a guest: a ferry whose guest left is asked to; a dead or
        settled one is started anew."""
        st = side.status() if side.alive() else None
        if st and st["status"] == "postmigrate":
            ctl(side.sock, "migrate-incoming", {"uri": side.inuri})
        elif not st or st["status"] != "incoming":
            if side.alive():
                self.retire(side)
            side.start("--incoming", side.inuri)
        poll(f"{side.name} to wait for a guest",
             lambda: (side.status() or {}).get("incoming", {}).get("phase") == "waiting", 60)

    # -- one migration -----------------------------------------------------
    def choose(self):
        kind = self.rng.choices(["none", "cut", "reset", "stall", "corrupt", "kill-src", "kill-dst"],
                                [1, 2, 2, 2, 2, 3, 3])[0]
        only_phase = ""
        if self.only:
            kind, only_phase = self.rng.choice(self.only)
        f = {"kind": kind, "channels": self.rng.choice([0, 2])}
        if kind in ("cut", "reset", "stall", "corrupt"):
            d = "src" if self.rng.random() < 0.8 else "dst"
            conn = 0 if not f["channels"] or self.rng.random() < 0.5 else self.rng.randint(1, f["channels"])
            k = int(2 ** self.rng.uniform(0, 12)) if d == "src" else self.rng.randint(1, 4)
            f["proxy"] = ["--fault", f"{kind}:{d}:{conn}:{k}"]
        elif kind.startswith("kill"):
            f["phase"] = only_phase or self.rng.choice(KILL_PHASES)
            if f["phase"] in HOLD:
                f["proxy"] = ["--hold", str(HOLD[f["phase"]])]
        return f

    def migrate(self, src, dst, f):
        port = 24000 + (os.getpid() % 200) * 25 + self.i % 25
        perr = open(os.path.join(self.tmp, "proxy.err"), "w+")
        proxy = subprocess.Popen([self.proxy_bin, f"tcp:127.0.0.1:{port}", dst.inuri, *f.get("proxy", [])],
                                 stdout=subprocess.PIPE, stderr=perr, text=True)
        try:
            proxy.stdout.readline()  # ready
            args = [self.ferry, "migrate", "--control", src.sock, "--to", f"tcp:127.0.0.1:{port}", "--json",
                    "--io-timeout-ms", "3000", "--timeout", "60", "--max-bandwidth", "96M"]
            if f["channels"]:
                args += ["--channels", str(f["channels"])]
            mig = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if f["kind"].startswith("kill"):
                f["at_kill"] = self.kill_at(src if f["kind"] == "kill-src" else dst, f["phase"], src, perr,
                                            proxy)
            try:
                out, _ = mig.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                mig.kill()
                raise Violation("ferry migrate did not end in 180 s")
            perr.seek(0)
            f["fired"] = "fault" in perr.read() or f["kind"].startswith("kill")
            lines = out.strip().splitlines()
            return json.loads(lines[-1]) if lines else {"status": "no report (source killed)"}
        finally:
            proxy.send_signal(signal.SIGUSR1)
            proxy.kill()
            proxy.wait()

    def kill_at(self, victim, phase, src, perr, proxy):
        """Kill victim at phase; returns what the migration was then: "held"
        when the proxy held the phase's record, else the source's status."""
        def migration():
            try:
                return ctl(src.sock, "query-migrate", timeout=5)
            except (OSError, RuntimeError):
                return {}
        if phase == "setup":
            time.sleep(self.rng.uniform(0, 0.03))
        elif phase == "round0":
            poll("round 0", lambda: migration().get("status") == "active", 60)
        elif phase == "round":
            poll("a later round", lambda: migration().get("rounds", 0) >= 1 or
                 migration().get("status") not in ("setup", "active"), 60)
        else:
            def holding():
                perr.seek(0)
                return "holding" in perr.read() or migration().get("status") in ("failed", "completed",
                                                                                 "cancelled", "unknown")
            poll(f"the proxy to hold ({phase})", holding, 90)
        perr.seek(0)
        at = "held" if phase in HOLD and "holding" in perr.read() else migration().get("status", "gone")
        victim.kill()
        proxy.send_signal(signal.SIGUSR1)  # the held record goes on, to whoever is left
        return at

    # -- after it ----------------------------------------------------------
    def settle(self, src, dst, f, report):
        """Resolve an unknown outcome; returns how."""
        if not src.alive():
            return "source killed"
        if not src.status():
            raise Violation(f"{src.name}, the source, ended by itself: {src.log_tail()}")
        m = ctl(src.sock, "query-migrate")
        if m["status"] != "unknown":
            return m["status"]
        r = subprocess.run([self.ferry, "migrate-resolve", "--control", src.sock, "--dest-control", dst.sock],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            return "unknown, resolved"
        if dst.alive():
            raise Violation(f"migrate-resolve failed with the destination alive: {r.stderr.strip()}")
        # The destination was killed (we did it: fenced): resume here, as an operator would.
        ctl(src.sock, "cont", {"force": True})
        return "unknown, destination killed: resumed with cont force"

    def holders(self, src, dst):
        def settled(side):
            st = side.status() if side.alive() else None
            # A destination whose guest has started says "running" before the
            # VM is handed to the control socket (no "guest" counters yet).
            return not st or "guest" in st or (st.get("incoming") or {}).get("phase") == "waiting"
        poll("both sides to settle", lambda: settled(src) and settled(dst), 60)
        return [s for s in (src, dst) if s.alive() and s.runs_guest()]

    def check(self, src, dst, f, outcome):
        held = self.holders(src, dst)
        if len(held) > 1:
            raise Violation("the guest runs on both sides")
        if not held:
            # Lost only with a process that held it: the source (before COMMIT
            # reached the destination), or the destination once it ran there.
            if f["kind"] != "kill-src" and not (f["kind"] == "kill-dst" and outcome == "completed"):
                raise Violation(f"the guest runs nowhere ({outcome}), and no process that held it was killed")
            # RESUMED held: COMMIT reached the destination, whose guest runs on.
            if f["kind"] == "kill-src" and f["phase"] == "resumed-held" and f["at_kill"] == "held":
                raise Violation("the source was killed after COMMIT reached the destination, "
                                "and the guest runs nowhere")
            return None
        side = held[0]
        st = side.status()
        if st["status"] == "paused":
            raise Violation(f"{side.name} holds the guest paused after {outcome}")
        v = ctl(side.sock, "guest-verify", timeout=150)
        if v.get("result") != "ok" or side.status()["guest"]["verify_errors"]:
            raise Violation(f"{side.name}: the guest's self-check failed: {v}")
        return side

    def one(self, src, dst):
        f = self.choose()
        self.make_destination(dst)
        report = self.migrate(src, dst, f)
        outcome = self.settle(src, dst, f, report)
        holder = self.check(src, dst, f, outcome)
        key = f["kind"] + (":" + f["phase"] if "phase" in f else "") + ("" if f.get("fired", True) else " (not reached)")
        if f.get("at_kill") not in (None, "held", "none", "setup", "active"):
            key += f" ({f['at_kill']})"  # the migration had ended when the kill came
        self.counts[(key, outcome + ("" if holder else ", guest lost with its killed holder"))] += 1
        print(f"[{self.i:3}] {src.name}->{dst.name} {key:28} {' '.join(f.get('proxy', []))[:32]:32} "
              f"-> {outcome}; guest on {holder.name if holder else 'none'}", flush=True)
        if holder is dst:
            dst.received = True
        if not holder:
            self.counts[("guests replaced", "")] += 1
            self.new_guest(src)
            holder = src
        for side in self.sides:
            if side.alive():
                st = side.status()
                # A guest that came by migration fills its memory otherwise
                # than one born here: each is compared with its own kind.
                role = ("guest" if side.received else "own guest") if side is holder else st["status"]
                side.sample(role)
        return holder

    def run(self):
        self.new_guest(self.sides[0])
        holder = self.sides[0]
        for self.i in range(1, self.runs + 1):
            other = self.sides[1] if holder is self.sides[0] else self.sides[0]
            try:
                holder = self.one(holder, other)
            except (Violation, RuntimeError, OSError, subprocess.SubprocessError) as e:  # an error answer, a lost socket, a hung command
                self.failures.append(f"migration {self.i}: {e}")
                print(f"[{self.i:3}] VIOLATION: {e}", flush=True)
                for side in self.sides:  # start over from a clean pair
                    self.retire(side)
                self.new_guest(self.sides[0])
                holder = self.sides[0]
        for side in self.sides:
            self.retire(side)

    # -- the account -------------------------------------------------------
    def growth(self):
        """Per process that lived 10 migrations or more: fd and RSS from its first
        to its last sample in the same role."""
        bad = []
        long_lived = [r for r in self.retired if len(r[2]) >= 10]
        if not long_lived:
            print("  none: no process lived through 10 migrations (the kills end them; "
                  "a soak with --only and no kill measures growth)")
        for name, born, samples in long_lived:
            for role in {s[1] for s in samples}:
                mine = [s for s in samples if s[1] == role]
                if len(mine) < 5:
                    continue
                first, last = mine[0][2], mine[-1][2]
                fd, rss = len(last) - len(first), (mine[-1][3] - mine[0][3]) // 1024
                print(f"  {name} (born at {born}), as {role}: {len(mine)} samples, fds "
                      f"{' '.join(str(len(s[2])) for s in mine)}, RSS (MiB) {' '.join(str(s[3] // 1024) for s in mine)}")
                if fd > 0 or rss > 32:
                    kind = lambda fds: collections.Counter(re.sub(r"\[\d+\]", "", t) for t in fds.values())
                    more = ", ".join(f"+{n} {k}" for k, n in (kind(last) - kind(first)).items())
                    bad.append(f"{name} as {role}: fds +{fd} ({more}), RSS +{rss} MiB")
        return bad

    def summary(self):
        print(f"\n{self.runs} migrations, seed {self.seed}:")
        for (fault, outcome), n in sorted(self.counts.items()):
            print(f"  {n:4}  {fault:34} {outcome}")
        print("resource growth of long-lived processes:")
        self.failures += self.growth()
        print(f"{len(self.failures)} violation(s)" + "".join(f"\n  {v}" for v in self.failures))
        if not self.failures and not self.keep:
            shutil.rmtree(self.tmp)
        else:
            print(f"logs in {self.tmp}")
        return 1 if self.failures else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--keep", action="store_true", help="keep the logs even when every check held")
    p.add_argument("--mem-mib", type=int, default=256, help="guest memory (a quarter of it dirtied)")
    p.add_argument("--only", metavar="FAULT", help="only these faults (a comma-separated list, one at random "
                   "each time): none, cut, reset, stall, corrupt, kill-src or kill-dst, a kill with :PHASE ("
                   + ", ".join(KILL_PHASES) + "); a soak without kills measures fd and RSS growth over every run")
    args = p.parse_args()
    for fault in (args.only or "none").split(","):
        kind, _, phase = fault.partition(":")
        if kind not in ("none", "cut", "reset", "stall", "corrupt", "kill-src", "kill-dst") or \
                (phase and (not kind.startswith("kill") or phase not in KILL_PHASES)):
            p.error(f"--only {args.only}: {fault!r} is not a fault this soak injects")
    if args.mem_mib < 64 or args.mem_mib % 4:
        p.error("--mem-mib must be at least 64 and a multiple of 4")
    if not os.path.exists("/dev/kvm"):
        print("soak: /dev/kvm is not available: nothing to migrate", file=sys.stderr)
        sys.exit(77)
    soak = Soak(args)

    def stop(*_):
        raise Stopped()
    signal.signal(signal.SIGTERM, stop)  # a bounded run still gives its account
    try:
        soak.run()
    except Stopped:
        soak.runs = soak.i - 1
        print(f"soak: stopped by SIGTERM during migration {soak.i}", flush=True)
        for side in soak.sides:
            soak.retire(side)
    finally:
        for side in soak.sides:
            if side.alive():
                side.kill()
    sys.exit(soak.summary())
