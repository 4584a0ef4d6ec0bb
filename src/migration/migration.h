/* What a migration is asked to do (parameters) and what it reports (stats),
 * shared by the source, the destination and the control layer. */
#ifndef FERRY_MIGRATION_MIGRATION_H
#define FERRY_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>

enum mig_status {
	MIG_NONE,
	MIG_SETUP,	/* connecting, handshake, destination allocating memory */
	MIG_ACTIVE,	/* pre-copy rounds, guest running */
	MIG_SWITCHOVER, /* guest paused, last pages and state going out */
	MIG_COMPLETED,	/* the guest runs on the destination */
	MIG_FAILED,	/* before COMMIT: the source guest runs on, memory intact */
	MIG_CANCELLED,	/* likewise, on request */
	MIG_UNKNOWN,	/* COMMIT sent, no answer: paused here, an operator decides */
};

struct mig_params {
	uint64_t downtime_ms;	    /* acceptable pause (default 300) */
	uint64_t max_bandwidth_bps; /* 0: unlimited (the default) */
	uint64_t timeout_s;	    /* give up after this long (default 600; 0: never) */
	uint32_t io_timeout_ms;	    /* a stalled connection fails after this long (10000) */
	bool verify;		    /* hash every page at switchover */
};

/* The parts of the downtime, in ms. */
struct mig_phases {
	double pause, final_sync, final_pages, state, verify, handoff, resume;
};

struct mig_stats {
	enum mig_status status;
	char reason[512]; /* why it failed, was cancelled or is unknown */
	char uri[256];
	double total_ms, setup_ms, downtime_ms;
	double expected_downtime_ms;
	uint32_t rounds;
	uint64_t bytes_sent;
	uint64_t pages_raw, pages_zero;
	uint64_t remaining_pages; /* dirty pages not yet sent */
	double bandwidth_bps;	  /* measured on the last full round */
	double dirty_rate_pps;	  /* pages dirtied per second in the last round */
	struct mig_phases phase;
	const char *verify; /* "ok", "mismatch" or "off" */
};

void mig_params_default(struct mig_params *p);
const char *mig_status_name(enum mig_status s);
bool mig_status_final(enum mig_status s);

#endif
