#!/bin/sh
# Run the meson test suite in each build directory given, then print one
# summary line "N passed, N failed" over all of them (skips counted apart).
#   test.sh DIR...            every test in each DIR
#   test.sh DIR=T1,T2 ...     only the tests named T1, T2 (or suites: unit)
set -u
pass=0 fail=0 skip=0
for arg in "$@"; do
	dir=${arg%%=*}
	names=""
	[ "$arg" != "$dir" ] && names=$(echo "${arg#*=}" | tr ',' ' ')
	echo "== tests in $dir${names:+ ($names)}"
	rm -f "$dir/meson-logs/testlog.json"
	set --
	for n in $names; do # a suite stands for its tests
		case $n in
		unit | kvm | fuzz | e2e)
			for t in $(meson test -C "$dir" --list --suite "$n" 2>/dev/null | sed 's/.* \/ //'); do
				set -- "$@" "$t"
			done ;;
		*) set -- "$@" "$n" ;;
		esac
	done
	meson test -C "$dir" --print-errorlogs --num-processes 1 "$@" || true
	log="$dir/meson-logs/testlog.json"
	[ -f "$log" ] || { fail=$((fail + 1)); continue; }
	p=$(grep -c '"result": "OK"' "$log")
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log")
	s=$(grep -c '"result": "SKIP"' "$log")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
