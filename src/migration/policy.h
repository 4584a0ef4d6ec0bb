/* When to stop pre-copy: the expected downtime, from measured bandwidth,
 * dirty pages, encoded size per page and the switchover's fixed cost,
 * against the downtime limit; once it fits, one more round while that would
 * at least halve the pages' share of it; and when to give up. */
#ifndef FERRY_MIGRATION_POLICY_H
#define FERRY_MIGRATION_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "migration/migration.h"

/* Below this share of the downtime limit, the last pages are not worth
 * another round. */
#define POLICY_SMALL_SHARE 0.05

/* How long a migration whose pages are not the problem may try to fit a
 * limit below the switchover's fixed cost before it gives up. */
#define POLICY_FIXED_COST_S 10.0

struct policy_input {
	uint64_t dirty_pages;  /* left to send after the last sync */
	uint64_t queued_bytes; /* sent but still queued in the kernel */
	double bytes_per_page; /* what a page costs on the wire, measured */
	double bandwidth_bps;  /* measured link throughput */
	double dirty_rate_pps; /* pages dirtied per second */
	double switchover_ms;  /* fixed cost: sync, state, hand-off (estimated) */
	double elapsed_s;      /* since the migration started */
	double round_s;	       /* how long the last round took */
};

enum policy_decision {
	POLICY_CONTINUE,
	POLICY_SWITCHOVER,
	POLICY_GIVE_UP
};

double policy_expected_downtime_ms(const struct policy_input *in);
/* Decide, and on POLICY_GIVE_UP write the reason (a sentence) to why. */
enum policy_decision policy_decide(const struct policy_input *in, const struct mig_params *p,
				   char *why, size_t len);

#endif
