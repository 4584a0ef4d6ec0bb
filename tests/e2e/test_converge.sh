#!/bin/sh
# Convergence over a veth shaped to 250 Mbit/s (about 30 MiB/s), with guests
# that dirty far faster. Byte writes: --converge none gives up with a reason
# (guest still running, intact); XBZRLE alone completes, also with a cache
# under the working set (its misses go as line deltas). Page writes by
# vCPU 0 while vCPU 1 only computes: throttle (auto-converge), sdps and
# dirty-limit each complete and pass --verify and the guest's self-check;
# dirty-limit slows only vCPU 0, the others slow both. (How much vCPU 1's
# work suffers is a measurement for bench/, not a test.)
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
note "a cache under the working set: its misses go as deltas of the lines that changed;"
note "auto does not slow a guest that deltas carry (it judges after a delta round, not round 0)"
pair "$BYTES"
completes "xbzrle 40M" --xbzrle=40M
[ "$(report "j['xbzrle']['line_pages'] > 0 and j['xbzrle']['digest_bytes'] > 0")" = True ] ||
	fail "no line deltas: $(report "j.get('xbzrle')")"
[ "$(report "j['converge']['throttle_pct_max']")" = 0 ] ||
	fail "auto slowed a guest that deltas carry: $(report "j['converge']['decisions']")"
note "line deltas: $(report "j['xbzrle']['line_pages']") of $(report "j['xbzrle']['cache_misses']") misses"
done_pair

PAGES=dirty:wss=64M,write=page,dirtiers=1
for how in throttle sdps dirty-limit; do
	note "page writes by vCPU 0 of 2: --converge $how"
	pair "$PAGES"
	completes "$how" --converge "$how"
	per_vcpu=$(report "j['converge']['vcpu_throttle_pct_max']")
	note "$how: each vCPU's highest throttle $per_vcpu"
	case $how in
	dirty-limit) # only the vCPU that dirties is slowed
		[ "$(report "int(j['converge']['vcpu_throttle_pct_max'][0] > 0 and j['converge']['vcpu_throttle_pct_max'][1] == 0)")" = 1 ] ||
			fail "dirty-limit did not slow vCPU 0 alone: $per_vcpu" ;;
	*) # every vCPU, the one that only computes too
		[ "$(report "int(min(j['converge']['vcpu_throttle_pct_max']) > 0)")" = 1 ] ||
			fail "$how did not slow every vCPU: $per_vcpu" ;;
	esac
	done_pair
done
finish converge
