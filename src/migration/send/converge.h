/* Making pre-copy converge when the guest dirties memory faster than the
 * link carries it: slow the guest down, and say so when nothing can help.
 *
 * After each round the strategy compares the rate the guest dirties, in
 * bytes on the wire (pages/s x measured bytes per page, so XBZRLE's savings
 * count), with the link's, and aims at CONVERGE_TARGET (send/meter.h).
 *   throttle     QEMU's auto-converge: all vCPUs, initial% then +increment%
 *                each round the dirty rate still exceeds half the send rate,
 *                up to max%; never eases.
 *   sdps         vMotion's stun during page send: all vCPUs, exactly the
 *                throttle that brings the dirty rate to the target, computed
 *                from the measured rates every round, eased when not needed.
 *   dirty-limit  per vCPU (needs the dirty ring): the target is shared
 *                max-min fairly, so vCPUs that dirty little are never slowed
 *                and only those over their share are throttled, each as much
 *                as it needs.
 *   auto         none while the guest converges by itself; then dirty-limit
 *                if the ring shows some vCPUs under their share, else sdps.
 *   none         never slows the guest.
 * Every decision is logged with its inputs and kept for the report. Giving
 * up is the policy's (send/policy.h): the strategy says what it can still do. */
#ifndef FERRY_MIGRATION_CONVERGE_H
#define FERRY_MIGRATION_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "migration/send/meter.h"
#include "migration/send/policy.h"
#include "vm/vm.h"

/* A round shorter than this measures a throttled vCPU (which runs a few
 * milliseconds at a time) too coarsely to ease its throttle on. */
#define CONVERGE_EASE_MIN_ROUND_S 0.2

struct vm;
struct throttle;

struct converge {
	struct vm *vm;
	struct throttle *throttle;
	enum converge_strategy active;	   /* auto: none until it decides */
	unsigned pct[VM_MAX_VCPUS];	   /* per vCPU, as set */
	uint64_t vcpu_pages[VM_MAX_VCPUS]; /* per-vCPU dirty counts at the last round */
	double unthrottled_bps;		   /* what the guest would dirty, at the last round */
	struct converge_stats stats;
};

/* Whether this VM can do what p asks (dirty-limit needs the dirty ring).
 * Returns 0 or -EINVAL with err_msg(). */
int converge_check(struct vm *vm, const struct mig_params *p);
/* Returns 0 or -errno with err_msg(), as converge_check. */
int converge_start(struct converge *c, struct vm *vm, const struct mig_params *p);
/* After round's sync, with the meter's reading: slow the guest as the
 * strategy says. Returns 0, CONVERGE_POSTCOPY where auto would start to
 * slow the guest and post-copy is allowed (switch to it instead), or
 * -errno with err_msg(). */
#define CONVERGE_POSTCOPY 1
int converge_after_round(struct converge *c, const struct mig_params *p,
			 const struct meter_reading *r, uint32_t round);
/* Early in round 0, with post-copy allowed under auto: whether the guest
 * dirties (dirty_bps, over secs) past what auto would slow it for, against
 * link_bps; if so, switch to post-copy now rather than send memory it
 * rewrites anyway (the decision is logged). */
bool converge_early_postcopy(struct converge *c, const struct mig_params *p, double dirty_bps,
			     double link_bps, double secs);
/* What the strategy can still do, for the policy. */
void converge_outlook(const struct converge *c, const struct mig_params *p,
		      struct converge_outlook *out);
/* Full speed again, for every vCPU. */
void converge_stop(struct converge *c);

/* The pure parts, shared with the predictor (migration/predict.h): the new
 * per-vCPU throttle of strategy s, given each vCPU's unthrottled dirty rate
 * r0 and current throttle now (n vCPUs, rates in bytes/s against target);
 * and auto's choice. */
void converge_plan(enum converge_strategy s, const struct mig_params *p, unsigned n,
		   const double *r0, const unsigned *now, double target, unsigned *pct);
enum converge_strategy converge_choose(bool per_vcpu, unsigned n, const double *r0, double target);

const char *converge_name(enum converge_strategy s);
/* Parse a strategy name; returns -EINVAL for an unknown one. */
int converge_parse(const char *name, enum converge_strategy *out);

#endif
