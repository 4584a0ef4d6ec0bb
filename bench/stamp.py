"""Where benchmark results come from, stamped on every result line: the
commit, kernel, CPU, cores, QEMU version and date. Imported by bench/run and
bench/tls-ruler."""
import datetime, os, platform, subprocess


def stamp(build):
    """Where and what the results come from: the commit is the one the
    build directory was built from (its parent's checkout)."""
    src = os.path.dirname(os.path.abspath(build))

    def out(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=src).stdout.strip()
        except OSError:
            return None
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), None)
    qemu_version = out("qemu-system-x86_64", "--version")
    dirty = out("git", "status", "--porcelain", "--untracked-files=no")
    return {"commit": out("git", "rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
            "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
            "qemu_version": qemu_version.splitlines()[0] if qemu_version else None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
