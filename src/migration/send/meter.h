/* What the sender measures as it goes: the link's bandwidth, what a page
 * costs on the wire, how fast the guest dirties, and what the switchover
 * will cost besides the pages. The policy decides on its readings, the
 * convergence strategy slows the guest by them, and the predictor
 * (migration/plan/predict.h) uses the same cost model before a migration.
 *
 * The meter owns its measurements and the dirty-rate probe's bitmap; the
 * source hands it samples of its counters at each round's start and end. */
#ifndef FERRY_MIGRATION_SEND_METER_H
#define FERRY_MIGRATION_SEND_METER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/page.h"

/* A page entry on the wire, and a raw page with its entry. */
#define WIRE_ENTRY_BYTES    8.0
#define WIRE_RAW_PAGE_BYTES ((double)FERRY_PAGE_SIZE + WIRE_ENTRY_BYTES)

/* Pre-copy converges when each round leaves less to send than the one
 * before; ferry aims at half. A guest that dirties more than this share of
 * what the link carries is in the way: the convergence strategy slows it,
 * the meter probes its rate, and the bytes still queued are not waited for. */
#define CONVERGE_TARGET 0.5

struct dirty;
struct guest_mem;

/* Where the sender stands at an instant: time, bytes written to the
 * sockets, bytes of those still queued in the kernel, pages encoded, and
 * the page payload before (raw) and after (wire) compression. */
struct meter_sample {
	uint64_t ns, bytes, queued, pages, raw_bytes, wire_bytes;
};

/* The meter's reading after a round. */
struct meter_reading {
	uint64_t dirty_pages;  /* to send next (the last sync's, with the probe's) */
	uint64_t queued_bytes; /* sent but still queued in the kernel */
	double bytes_per_page; /* what a page costs on the wire */
	double bandwidth_bps;  /* what left the sockets per second; 0: not measured */
	double dirty_rate_pps; /* pages dirtied per second */
	double switchover_ms;  /* the switchover's cost besides the pages */
	double elapsed_s;      /* since the migration started */
	double round_s;	       /* how long the round took */
	uint32_t rounds;       /* rounds measured so far */
};

struct meter {
	struct dirty *dirty;
	uint64_t npages;
	uint64_t *probe; /* pages the probe's sync saw */
	unsigned nr_vcpus;
	bool compressing;
	double verify_ms;		    /* hashing every page on both sides, with --verify */
	const struct guest_mem *verify_mem; /* what meter_time_verify timed */
	uint64_t start_ns;
	uint32_t rounds; /* measured so far */
	struct meter_sample round_start;
	uint64_t sync_ns; /* when the last sync began */
	struct meter_reading r;
};

/* Returns 0 or -ENOMEM with err_msg(). */
int meter_init(struct meter *m, struct dirty *dirty, uint64_t npages, unsigned nr_vcpus,
	       bool compressing, uint64_t start_ns);
void meter_free(struct meter *m);
/* With --verify: time hashing a sample of mem, to predict hashing it all;
 * each round end times it once more and keeps the fastest, so that a load
 * spike during the first timing does not inflate every round's forecast. */
void meter_time_verify(struct meter *m, const struct guest_mem *mem);
/* What --verify's hashing of all of mem, on both sides, adds to the
 * switchover: the fastest of `times` timings of a sample. */
double verify_cost_ms(const struct guest_mem *mem, int times);

void meter_round_start(struct meter *m, const struct meter_sample *s);
/* After a round that ended at sample end: bandwidth and bytes per page,
 * then the dirty sync that ORs the next round's pages into next, and the
 * dirty rate. Returns 0 or -errno. */
int meter_round_end(struct meter *m, const struct meter_sample *end, uint64_t *next);
/* The last reading, brought up to now (sample) for a check during a round:
 * before any round was measured, the bandwidth of the round so far. */
void meter_live(const struct meter *m, const struct meter_sample *now, struct meter_reading *out);
/* Pages a sync in the round took early (carry, emptied) go into next too. */
void meter_carry(struct meter *m, uint64_t *next, uint64_t *carry);
/* A round's dirty count saturates at the working set when the guest
 * dirties it all within the round, hiding how fast it really dirties. A
 * second sync a short window (20 ms) later measures the rate where it
 * cannot saturate; its pages join next. When it is worth it: policy.h. */
int meter_probe(struct meter *m, uint64_t *next);

/* The bytes per second the guest dirties, as they would go on the wire. */
double meter_dirty_bps(const struct meter_reading *r);
/* The switchover's cost besides the pages, in ms: the final dirty sync, the
 * state (about 16 KiB per vCPU) at bandwidth_bps, restoring and two one-way
 * trips, and verify_ms. The one model, for the sender and the predictor. */
double switchover_cost_ms(double sync_ms, double verify_ms, unsigned vcpus, double bandwidth_bps);

#endif
