#include "migration/policy.h"

#include <stdio.h>

#include "migration/migration.h"

double policy_expected_downtime_ms(const struct policy_input *in)
{
	double bytes = (double)in->dirty_pages * in->bytes_per_page + (double)in->queued_bytes;

	if (in->bandwidth_bps <= 0)
		return 1e12; /* nothing measured yet: never stop on a guess */
	return bytes * 1000.0 / in->bandwidth_bps + in->switchover_ms;
}

enum policy_decision policy_decide(const struct policy_input *in, const struct mig_params *p,
				   char *why, size_t len)
{
	double expected = policy_expected_downtime_ms(in);
	double pages_ms = expected - in->switchover_ms;
	double ratio = in->bandwidth_bps > 0
			       ? in->dirty_rate_pps * in->bytes_per_page / in->bandwidth_bps
			       : 1;

	/* Within the limit. One more round costs about pages_ms of total time
	 * and leaves ratio of it: worth it while that halves the downtime and
	 * the pages still take a noticeable share of the limit. */
	if (expected <= (double)p->downtime_ms &&
	    (ratio >= 0.5 || pages_ms <= POLICY_SMALL_SHARE * (double)p->downtime_ms))
		return POLICY_SWITCHOVER;
	if (expected <= (double)p->downtime_ms)
		return POLICY_CONTINUE;
	/* The fixed cost alone is over the limit and, after a while, the pages
	 * are still not what is in the way: no round can help. (A paced guest
	 * leaves some rounds empty; that alone proves nothing.) */
	if (in->bandwidth_bps > 0 && in->switchover_ms > (double)p->downtime_ms &&
	    pages_ms < 0.1 * in->switchover_ms && in->elapsed_s >= POLICY_FIXED_COST_S) {
		snprintf(
			why, len,
			"the switchover alone takes %.0f ms (final dirty sync, device state, hand-off%s) against a limit of %llu ms: allow more downtime",
			in->switchover_ms, p->verify ? ", hashing memory for --verify" : "",
			(unsigned long long)p->downtime_ms);
		return POLICY_GIVE_UP;
	}
	if (p->timeout_s && in->elapsed_s >= (double)p->timeout_s) {
		snprintf(
			why, len,
			"did not converge in %llu s: the guest dirties %.0f MiB/s, the link carries %.0f MiB/s, and %llu dirty pages would take %.0f ms against a limit of %llu ms",
			(unsigned long long)p->timeout_s, in->dirty_rate_pps * 4096 / (1 << 20),
			in->bandwidth_bps / (1 << 20), (unsigned long long)in->dirty_pages,
			expected, (unsigned long long)p->downtime_ms);
		return POLICY_GIVE_UP;
	}
	return POLICY_CONTINUE;
}
