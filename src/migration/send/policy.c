#include "migration/send/policy.h"

#include <errno.h>
#include <stdio.h>

#include "util/error.h"

#define MIB (1024.0 * 1024.0)

double policy_expected_downtime_ms(const struct meter_reading *r)
{
	double bytes = (double)r->dirty_pages * r->bytes_per_page + (double)r->queued_bytes;

	if (r->bandwidth_bps <= 0)
		return 1e12; /* nothing measured yet: never stop on a guess */
	return bytes * 1000.0 / r->bandwidth_bps + r->switchover_ms;
}

bool policy_wants_probe(const struct meter_reading *r, const struct mig_params *p)
{
	if (r->bandwidth_bps <= 0)
		return false;
	return meter_dirty_bps(r) > CONVERGE_TARGET * r->bandwidth_bps ||
	       (r->round_s >= POLICY_PROBE_ROUND_S &&
		policy_expected_downtime_ms(r) > (double)p->downtime_ms);
}

static void timed_out(const struct meter_reading *r, const struct mig_params *p, uint64_t remaining,
		      char *why, size_t len)
{
	struct meter_reading now = *r;

	now.dirty_pages = remaining;
	if (!r->rounds) {
		snprintf(
			why, len,
			"did not converge in %llu s: the first copy of memory did not even finish (the link carries %.0f MiB/s, and %llu pages were still to send)",
			(unsigned long long)p->timeout_s, r->bandwidth_bps / MIB,
			(unsigned long long)remaining);
		return;
	}
	snprintf(
		why, len,
		"did not converge in %llu s: the guest dirties %.0f MiB/s, the link carries %.0f MiB/s, and %llu dirty pages would take %.0f ms against a limit of %llu ms",
		(unsigned long long)p->timeout_s, r->dirty_rate_pps * FERRY_PAGE_SIZE / MIB,
		r->bandwidth_bps / MIB, (unsigned long long)remaining,
		policy_expected_downtime_ms(&now), (unsigned long long)p->downtime_ms);
}

/* Whether the round left at least 90% of the bytes the one before did, for
 * POLICY_STUCK_ROUNDS rounds in a row (in bytes, so that XBZRLE counts). */
static bool stuck(struct policy *pol, const struct meter_reading *r)
{
	double left = (double)r->dirty_pages * r->bytes_per_page;

	pol->stuck = pol->last_left > 0 && left >= 0.9 * pol->last_left ? pol->stuck + 1 : 0;
	pol->last_left = left;
	return pol->stuck >= POLICY_STUCK_ROUNDS;
}

enum policy_decision policy_decide(struct policy *pol, const struct meter_reading *r,
				   const struct mig_params *p, const struct converge_outlook *o,
				   char *why, size_t len)
{
	double expected = policy_expected_downtime_ms(r);
	double pages_ms = expected - r->switchover_ms, limit = (double)p->downtime_ms;
	double ratio = r->bandwidth_bps > 0 ? meter_dirty_bps(r) / r->bandwidth_bps : 1;
	bool no_progress = stuck(pol, r);

	/* Within the limit. One more round costs about pages_ms of total time
	 * and leaves ratio of it: worth it while that halves the downtime and
	 * the pages still take a noticeable share of the limit. A throttle
	 * holds its guest at CONVERGE_TARGET (a half) of the link: weighed
	 * against a half, each round would toss a coin (5 ms or 200 ms of
	 * downtime for one guest), so a slowed guest, near paused already,
	 * goes on while its rounds shrink. */
	double worth = o->slowed ? POLICY_SLOWED_WORTH : 0.5;

	if (expected <= limit && (ratio >= worth || pages_ms <= POLICY_SMALL_SHARE * limit))
		return POLICY_SWITCHOVER;
	if (expected <= limit)
		return POLICY_CONTINUE;
	/* The fixed cost alone is over the limit and, after a while, the pages
	 * are still not what is in the way: no round can help. (A paced guest
	 * leaves some rounds empty; that alone proves nothing.) */
	if (r->bandwidth_bps > 0 && r->switchover_ms > limit && pages_ms < 0.1 * r->switchover_ms &&
	    r->elapsed_s >= POLICY_FIXED_COST_S) {
		snprintf(
			why, len,
			"the switchover alone takes %.0f ms (final dirty sync, device state, hand-off%s) against a limit of %llu ms: allow more downtime",
			r->switchover_ms, p->verify ? ", hashing memory for --verify" : "",
			(unsigned long long)p->downtime_ms);
		return POLICY_GIVE_UP;
	}
	/* Stuck while the guest dirties slowly is the limit's doing, not the
	 * guest's: the timeout reports that one. */
	if (no_progress && ratio > CONVERGE_TARGET && o->exhausted) {
		snprintf(
			why, len,
			"cannot converge: the guest dirties %.0f MiB/s, the link carries %.0f MiB/s, and %s",
			meter_dirty_bps(r) / MIB, r->bandwidth_bps / MIB, o->why);
		return POLICY_GIVE_UP;
	}
	if (p->timeout_s && r->elapsed_s >= (double)p->timeout_s) {
		timed_out(r, p, r->dirty_pages, why, len);
		return POLICY_GIVE_UP;
	}
	return POLICY_CONTINUE;
}

int policy_check_timeout(const struct meter_reading *r, const struct mig_params *p,
			 double elapsed_s, uint64_t remaining)
{
	char why[400];

	if (!p->timeout_s || elapsed_s < (double)p->timeout_s)
		return 0;
	timed_out(r, p, remaining, why, sizeof(why));
	return err_set(-ETIMEDOUT, "%s", why);
}
