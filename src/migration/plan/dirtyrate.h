/* Measuring how fast a running guest dirties its memory, without migrating:
 * what `ferry predict` needs to say how a migration would go.
 *
 * For the asked number of seconds, a thread syncs the dirty log every
 * DIRTYRATE_WINDOW_MS and counts: the rate (pages per second, each window
 * counting the distinct pages it saw, so the rate does not saturate the way
 * a long round does), the peak window, the working set (distinct pages over
 * the whole time), each vCPU's share (dirty ring only) and how busy each
 * vCPU is (the share of the time it did not sleep in the guest's sleep call:
 * a guest that waits by spinning looks busy), the zero pages of
 * guest memory, and what XBZRLE would make of a re-dirtied page: pages
 * dirtied in the first half are copied, and those dirtied again in the
 * second half are encoded against their copies. */
#ifndef FERRY_MIGRATION_DIRTYRATE_H
#define FERRY_MIGRATION_DIRTYRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/compress.h"
#include "vm/vm.h"

#define DIRTYRATE_WINDOW_MS   100
#define DIRTYRATE_MAX_SECONDS 60
#define DIRTYRATE_SAMPLES     1024

enum dirtyrate_status {
	DIRTYRATE_NONE,
	DIRTYRATE_MEASURING,
	DIRTYRATE_MEASURED,
	DIRTYRATE_FAILED
};

struct dirtyrate_result {
	enum dirtyrate_status status;
	char reason[256];
	double seconds, elapsed_s;
	uint64_t ended_ns; /* when it ended (time_now_ns) */
	uint64_t mem_pages, zero_pages, working_set_pages;
	double rate_pps, peak_pps;
	double rate_p10_pps, rate_p90_pps; /* the quietest and busiest tenth of the windows */
	unsigned nr_vcpus;
	bool per_vcpu; /* vcpu_pps is measured (dirty ring) */
	double vcpu_pps[VM_MAX_VCPUS];
	double vcpu_busy[VM_MAX_VCPUS]; /* 0 to 1 (a forecast takes an unknown 0 as 1) */
	uint32_t xbzrle_samples;	/* re-dirtied sample pages encoded */
	double xbzrle_bytes_per_page;	/* their mean encoded size (raw if larger) */
	double line_bytes_per_page;	/* the same as deltas of lines (codec/digest.h) */
	/* The sampled pages compressed in batches by each codec: wire bytes per
	 * raw byte, and raw bytes per second on one core (0: not measured). */
	double codec_ratio[COMPRESS_KINDS], codec_bps[COMPRESS_KINDS];
	double copy_bps; /* ferry's copy on this host (plan/copyrate.h; 0: unknown) */
	/* The same by as many senders side by side as the host has cores
	 * (data channels' workers; at least 2, or 1 on a single core). */
	double copy_parallel_bps;
	unsigned copy_parallel_senders;
	double verify_ms; /* what --verify's hashing adds to a switchover (send/meter.h) */
	double sync_ms;	  /* a dirty-log sync's time (the windows' median): the final one's */
};

struct vm;
struct dirtyrate;

/* Start measuring for seconds (1 to DIRTYRATE_MAX_SECONDS). The caller makes
 * sure no migration uses dirty tracking meanwhile. */
int dirtyrate_start(struct vm *vm, unsigned seconds, struct dirtyrate **out);
struct dirtyrate_result dirtyrate_get(struct dirtyrate *d);
bool dirtyrate_running(struct dirtyrate *d);
/* Wait for the measurement to end, then free it. NULL is fine. */
void dirtyrate_free(struct dirtyrate *d);

#endif
