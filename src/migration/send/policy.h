/* When pre-copy stops, one way or the other: the one place that decides
 * to switch over or to give up.
 *
 * Switch over once the expected downtime (the dirty pages' bytes and the
 * bytes still queued, at the measured bandwidth, plus the switchover's
 * fixed cost) fits the limit; one more round while that would at least
 * halve the pages' share of it (a slowed guest: while it would shrink
 * it). Give up, with a sentence that gives the numbers, when the timeout
 * has passed; when the fixed cost alone exceeds the limit and, after a
 * while, the pages are not what is in the way; and when rounds have
 * stopped shrinking what is left while the guest dirties faster than the
 * link carries and the convergence strategy has nothing left to try. */
#ifndef FERRY_MIGRATION_SEND_POLICY_H
#define FERRY_MIGRATION_SEND_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/migration.h"
#include "migration/send/meter.h"

/* Below this share of the downtime limit, the last pages are not worth
 * another round. */
#define POLICY_SMALL_SHARE 0.05
/* How long a migration whose pages are not the problem may try to fit a
 * limit below the switchover's fixed cost before it gives up. */
#define POLICY_FIXED_COST_S 10.0
/* Rounds in a row that each leave at least 90% of the bytes the one before
 * left, with nothing left to try, before giving up. */
#define POLICY_STUCK_ROUNDS 5
/* A slowed guest's rounds go on while each leaves less than this share of
 * the one before (above the throttle's aim, CONVERGE_TARGET: see
 * policy_decide). */
#define POLICY_SLOWED_WORTH 0.75

/* What the convergence strategy can still do (converge_outlook()). */
struct converge_outlook {
	bool exhausted; /* nothing left to slow: none asked, or every throttle at its cap */
	bool slowed;	/* a throttle holds some vCPU back now */
	char why[256];	/* how it stands, for the give-up sentence */
};

/* Rounds that did not shrink what is left. */
struct policy {
	unsigned stuck;
	double last_left;
};

enum policy_decision {
	POLICY_CONTINUE,
	POLICY_SWITCHOVER,
	POLICY_GIVE_UP
};

/* A round at least this long has its real dirty rate probed when what it
 * left does not fit the downtime limit (policy_wants_probe): the probe's
 * 20 ms cost at most 2% of it. */
#define POLICY_PROBE_ROUND_S 1.0

double policy_expected_downtime_ms(const struct meter_reading *r);
/* Whether the round's dirty count may hide the guest's real rate where the
 * next decision needs it (meter_probe reads it then): the count is in the
 * link's way, or the round was long and what it left does not fit the
 * limit, so another round comes. A guest that rewrites a working set small
 * beside a long round stops its count at that set: read over the whole
 * round, it looks slower than it is and would be slowed a round late. */
bool policy_wants_probe(const struct meter_reading *r, const struct mig_params *p);
/* After a round: decide; on POLICY_GIVE_UP the reason is in why. */
enum policy_decision policy_decide(struct policy *pol, const struct meter_reading *r,
				   const struct mig_params *p, const struct converge_outlook *o,
				   char *why, size_t len);
/* During a round: -ETIMEDOUT with the reason once the timeout has passed
 * (r: the reading brought up to now, meter_live; remaining: pages still to
 * send), else 0. */
int policy_check_timeout(const struct meter_reading *r, const struct mig_params *p,
			 double elapsed_s, uint64_t remaining);

#endif
