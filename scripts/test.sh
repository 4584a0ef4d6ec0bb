#!/bin/sh
# Run the meson test suite in each build directory given, then print one
# summary line "N passed, N failed" over all of them (skips counted apart).
set -u
pass=0 fail=0 skip=0
for dir in "$@"; do
	echo "== tests in $dir"
	meson test -C "$dir" --print-errorlogs --num-processes 1 || true
	log="$dir/meson-logs/testlog.json"
	[ -f "$log" ] || { fail=$((fail + 1)); continue; }
	p=$(grep -c '"result": "OK"' "$log")
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
	s=$(grep -c '"result": "SKIP"' "$log")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
