#!/usr/bin/env python3
"""Fail the build when a source file includes a header from a layer above
its own (DESIGN.md section 2: dependencies point down, never up), when the
sender, the receiver and the shared migration vocabulary reach into each
other, or when a file outside the guest interface reads guest/abi.h.

    check-layers.py STAMP FILE...

Each FILE is a path under src/. On success STAMP is written (a header the
libraries depend on, so that the check runs before any of them builds)."""
import re
import sys

# Each layer, and the layers below it that it may include.
LAYERS = {
    "util": [],
    "guest": ["util"],
    "vm": ["util", "guest"],
    "codec": ["util"],
    "stream": ["util"],
    "transport": ["util"],
    "migration": ["util", "vm", "codec", "stream", "transport"],
    "control": ["util", "vm", "codec", "stream", "transport", "migration"],
    "cli": ["util", "vm", "codec", "stream", "transport", "migration", "control"],
}
# Inside migration/: the shared vocabulary (migration/*.h) sees none of the
# parts; the sender and the receiver do not see each other; planning replays
# the sender's own model.
PARTS = {"": [], "send": [""], "recv": [""], "plan": ["", "send"]}
# The VMM's side of the guest ABI: only these read guest/abi.h.
ABI_READERS = {"vm/loader.c", "vm/port.c", "vm/workload.c", "vm/guest_status.c"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def where(path):
    """(layer, part) of a path under src/, part being migration's subfolder."""
    parts = path.split("/")
    part = parts[1] if parts[0] == "migration" and len(parts) > 2 else ""
    return parts[0], part


def problems(path, text):
    layer, part = where(path)
    for header in INCLUDE.findall(text):
        if "/" not in header:
            continue
        to_layer, to_part = where(header)
        if header == "guest/abi.h" and layer != "guest" and path not in ABI_READERS:
            yield f"{path} reads guest/abi.h: only {', '.join(sorted(ABI_READERS))} may (others ask vm/ through functions)"
        elif to_layer != layer and to_layer not in LAYERS.get(layer, []):
            yield f"{path} includes {header}: {layer}/ may not depend on {to_layer}/ (a layer above it)"
        elif layer == to_layer == "migration" and to_part != part and to_part not in PARTS.get(part, []):
            mine = f"migration/{part}/" if part else "migration/*.h"
            theirs = f"migration/{to_part}/" if to_part else "migration/*.h"
            yield f"{path} includes {header}: {mine} may not depend on {theirs}"


def main():
    stamp, files = sys.argv[1], sys.argv[2:]
    found = []
    for f in files:
        rel = f[f.rindex("src/") + 4:] if "src/" in f else f
        with open(f, encoding="utf-8") as fh:
            found.extend(problems(rel, fh.read()))
    if found:
        print("layering: " + "\nlayering: ".join(found), file=sys.stderr)
        return 1
    with open(stamp, "w", encoding="utf-8") as fh:
        fh.write("/* The layer check passed (scripts/check-layers.py). */\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
