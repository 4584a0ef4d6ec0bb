/* Predicting a migration before running it: total time, downtime and how
 * much each strategy slows the guest, from a dirty-rate measurement
 * (migration/dirtyrate.h) and a link speed.
 *
 * The model replays ferry's own pre-copy round by round: round 0 sends every
 * page (zero pages cost only their entry); each later round sends what was
 * dirtied during the one before, at most the working set; the switchover
 * comes once the pages left fit the downtime limit; the strategies throttle
 * with the engine's own code (converge_plan, policy_decide), and the
 * switchover costs what the sender's meter says (switchover_cost_ms). It assumes the
 * link is the bottleneck (not the CPUs). A throttled vCPU busy a fraction b
 * of the time (dirtyrate.h) keeps its pace until the throttle leaves it less
 * than b, and slows in proportion after that; the engine, which sees only
 * the rate, reads a rate that did not fall as a guest that dirties faster
 * and throttles harder: the model replays that too. With compression, a
 * page costs what the codec made of the sampled pages, and the wire carries
 * no more than the workers (one per data channel) compress, nor than the
 * senders copy on this host side by side (copy_bps for one, and for one a
 * core: dirtyrate.h); --compress auto is forecast as the codec that moves
 * pages fastest by that measure. */
#ifndef FERRY_MIGRATION_PREDICT_H
#define FERRY_MIGRATION_PREDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "migration/plan/dirtyrate.h"
#include "vm/vm.h"

#define PREDICT_MAX_ROUNDS 10000

/* How far the link's rate may stray from the one given: ferry's measured
 * bandwidth on a shaped 1 Gbit/s link was 0.95 to 1.04 of a plain copy's
 * over the published bench runs (bench/published/results.jsonl). */
#define PREDICT_LINK_SPREAD 0.05

struct predict_input {
	struct dirtyrate_result m; /* the guest as measured (a zero: unknown) */
	double link_bps;	   /* bytes per second */
	struct mig_params params;  /* downtime, timeout, xbzrle, throttle */
};

struct prediction {
	bool converges;
	double total_ms, downtime_ms;
	unsigned rounds; /* as the engine counts them: with the last, paused one */
	struct round_record round_log[MIG_ROUND_LOG];
	unsigned pct[VM_MAX_VCPUS]; /* the throttle at switchover */
	unsigned pct_max;
	enum converge_strategy used;
	enum compress_kind codec; /* the one forecast (auto: the fastest) */
	/* Had the engine switched over at the first round whose pages fit the
	 * limit: its downtime and total then (0: none fit). The engine goes on
	 * while a round leaves a small enough share of the one before, a
	 * measured ratio that wavers on a throttled guest, so it may. */
	double first_fit_downtime_ms, first_fit_total_ms;
	char why[200]; /* when it does not converge */
};

/* A forecast's range: the least and the most over the guest at its
 * quietest tenth, its mean and its busiest tenth, each on the link given
 * and PREDICT_LINK_SPREAD slower and faster, each switching over where
 * the replay does or at the first round that fits the limit. */
struct predict_range {
	bool converges; /* in every case: else the upper ends are unknown */
	double total_ms[2], downtime_ms[2];
};

void predict(const struct predict_input *in, struct prediction *out);
void predict_range(const struct predict_input *in, const struct prediction *point,
		   struct predict_range *out);

#endif
