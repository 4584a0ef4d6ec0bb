#!/bin/sh
# make bench: run every benchmark, print the tables, and append one JSON line
# per result to bench/results/<date>.jsonl.
set -e
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/$(date +%Y%m%d-%H%M%S).jsonl
"$build/bench/bench-vmcore" all --json "$out"
python3 bench/migration.py --build "$build" --json "$out"
echo
echo "results: $out"
