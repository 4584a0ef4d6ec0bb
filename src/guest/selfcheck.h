/* Writing and checking working-set pages. With checking on, every page
 * carries a header (generation, tag, last small write) and the guest keeps
 * each page's generation in a table elsewhere in memory; a page whose header
 * or last write disagrees with the table is stale or torn. */
#ifndef FERRY_GUEST_SELFCHECK_H
#define FERRY_GUEST_SELFCHECK_H

#include <stdint.h>

#include "guest/abi.h"

struct wl_ctx {
	uint32_t cpu, ncpu;
	const struct ferry_workload_args *args;
	struct ferry_vcpu_status *st;
	uint32_t *table; /* generation of each working-set page */
	uint8_t *ws;	 /* working set */
	uint64_t first;	 /* this vCPU's share: pages [first, first + count) */
	uint64_t count;
	uint64_t rng;
	uint64_t cursor; /* sequential pattern position */
};

void selfcheck_init(struct wl_ctx *ctx, uint32_t cpu, uint32_t ncpu);
/* Initial content of page idx (generation 1). */
void selfcheck_fill(struct wl_ctx *ctx, uint64_t idx);
/* One write of the configured size to page idx, verifying it first. */
void selfcheck_write(struct wl_ctx *ctx, uint64_t idx);
/* Check every page of this vCPU's share; returns the number of bad pages. */
uint64_t selfcheck_sweep(struct wl_ctx *ctx);

#endif
