#!/bin/sh
# make bench: the VMM core benchmarks, the XBZRLE cache designs, then every
# scenario in bench/scenarios (bench/run), all into one bench/results/<date>.jsonl;
# and the transport's cost of TLS (bench/tls-ruler, its own results file).
set -e
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/$(date +%Y%m%d-%H%M%S).jsonl
"$build/bench/bench-vmcore" all --json "$out"
"$build/bench/bench-xbzrle-cache" --json "$out"
bench/run --build "$build" --out "$out"
bench/tls-ruler --build "$build"
