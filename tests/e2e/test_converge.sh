#!/bin/sh
# Convergence over a veth shaped to 250 Mbit/s (about 30 MiB/s), with guests
# that dirty far faster. Byte writes: --converge none gives up with a reason
# (guest still running, intact); XBZRLE alone completes. Page writes by
# vCPU 0 while vCPU 1 only computes: throttle (auto-converge), sdps and
# dirty-limit each complete and pass --verify and the guest's self-check;
# under dirty-limit vCPU 1 keeps within 10% of its speed, under throttle it
# slows down.
. "$(dirname "$0")/lib.sh"
need_kvm
need_link 250mbit
URI=tcp:198.18.0.2:4444
N=0

# pair WORKLOAD: a fresh source sN and destination dN; sets S and D.
pair() {
	N=$((N + 1)) S=s$N D=d$N
	vm_in src "$S" --mem 256M --vcpus 2 --dirty-backend ring --workload "$1"
	vm_in dst "$D" --incoming "$URI" --dirty-backend ring
	sleep 1 # the guest fills its working set
}

done_pair() { ctl "$S" quit >/dev/null 2>&1; ctl "$D" quit >/dev/null 2>&1; }

completes() { # WHAT migrate-args...
	what=$1; shift
	migrate "$S" "$URI" --verify "$@" || fail "$what: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
	note "$what: $(report "'%.0f ms, downtime %.1f ms, %d rounds, throttle max %d%%' % (j['total_ms'], j['downtime_ms'], j['rounds'], j['converge']['throttle_pct_max'])")"
	[ "$(report "j['verify']")" = ok ] || fail "$what: verify $(report "j['verify']")"
	expect_progress "$D"
	expect_guest_ok "$D"
}

# work_rate NAME: vCPU 1's units of work per second, over half a second.
work_rate() {
	python3 - "$(sock "$1")" <<'PY'
import json, socket, sys, time
def work():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
    f.readline(); f.write('{"execute":"query-status"}\n'); f.flush()
    w = json.loads(f.readline())["return"]["guest"]["per_vcpu"][1]["work"]; s.close()
    return w, time.monotonic()
a, t0 = work()
time.sleep(0.5)
b, t1 = work()
print(int((b - a) / (t1 - t0)))
PY
}

# still_migrating NAME: the migration has not ended (so the source's guest
# counters were live throughout the last sample).
still_migrating() {
	[ "$(ctl "$1" query-migrate | json_field - "j['status']")" = active ]
}

# wait_throttle NAME PCT: until some vCPU is throttled at least PCT%.
wait_throttle() {
	for _ in $(seq 600); do
		[ "$(ctl "$1" query-migrate | json_field - "j['converge']['throttle_pct'] >= $2")" = True ] && return 0
		sleep 0.05
	done
	return 1
}

BYTES=dirty:wss=64M,rate=100M,write=byte
note "byte writes, --converge none: gives up, guest intact"
pair "$BYTES"
migrate "$S" "$URI" --converge none && fail "a guest dirtying faster than the link converged with none"
report "j['reason']" | grep -q "cannot converge: the guest dirties" || fail "reason: $(report "j.get('reason')")"
note "reason: $(report "j['reason']")"
expect_progress "$S"
expect_guest_ok "$S"
kill_vm "$D"
vm_in dst "$D" --incoming "$URI"
note "the same guest with XBZRLE and no throttle"
completes xbzrle --converge none --xbzrle=128M
[ "$(report "j['xbzrle']['pages'] > 0 and j['converge']['throttle_pct_max'] == 0")" = True ] ||
	fail "XBZRLE did not do the work: $(report "j.get('xbzrle')")"
done_pair

PAGES=dirty:wss=64M,write=page,dirtiers=1
for how in throttle sdps dirty-limit; do
	note "page writes by vCPU 0 of 2: --converge $how"
	pair "$PAGES"
	before=$(work_rate "$S")
	migrate "$S" "$URI" --verify --converge "$how" &
	MIG=$!
	wait_throttle "$S" 40 || fail "$how: never throttled"
	during=$(work_rate "$S")
	still_migrating "$S" || fail "$how: the migration ended before vCPU 1 was measured"
	wait $MIG || fail "$how: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
	note "$how: vCPU 1 works at $during/s while throttling, $before/s before; $(report "'%.0f ms, downtime %.1f ms, throttle %s' % (j['total_ms'], j['downtime_ms'], j['converge']['throttle_pct_max'])")"
	[ "$(report "j['verify']")" = ok ] || fail "$how: verify"
	expect_progress "$D"
	expect_guest_ok "$D"
	case $how in
	dirty-limit) [ $((during * 10)) -ge $((before * 9)) ] || fail "dirty-limit slowed vCPU 1: $before -> $during" ;;
	throttle) [ $((during * 10)) -lt $((before * 8)) ] || fail "throttle did not slow vCPU 1: $before -> $during" ;;
	esac
	done_pair
done
finish converge
