/* The source's return path during post-copy: a thread reads what the
 * destination says on the main channel once COMMIT is out: RESUMED (the
 * guest runs there), REQUEST (pages a thread there waits for), PLACED
 * (every page is there), or ERROR. It answers each REQUEST at once on the
 * urgent channel, a connection of its own, so that an asked-for page never
 * waits behind the push; it takes the page out of the pending set (the
 * push skips it) and leaves a hint where the push should go on (right
 * after it: what a vCPU touches next is likely near). */
#ifndef FERRY_MIGRATION_SEND_REQUESTS_H
#define FERRY_MIGRATION_SEND_REQUESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/format.h"

struct chan;
struct guest_mem;
struct requests;

struct requests_stats {
	uint64_t records, pages;  /* REQUEST records, pages asked for */
	uint64_t resumed_ns;	  /* when RESUMED came (time_now_ns), 0 before */
	struct rec_placed placed; /* the destination's account, once PLACED came */
	bool told;		  /* ERROR: the destination gave up (before RESUMED:
				     it did not start the guest) */
};

/* What the answers need: the paused guest's memory, the pages still to
 * send (a bitmap both threads clear atomically) and their round. */
struct requests_source {
	const struct guest_mem *mem;
	uint64_t *pending;
	uint32_t round;
	struct chan *main, *urgent;
};

int requests_start(const struct requests_source *src, struct requests **out);
/* Where the push should go on: after the last page asked for (a gfn); it
 * changes with each REQUEST. 0 before any. */
uint64_t requests_hint(struct requests *r);
/* Wait up to timeout_ms for PLACED: 0 once it came, -ETIMEDOUT if nothing
 * at all came meanwhile (a REQUEST restarts the wait), or -errno with a
 * sentence once the return path failed. */
int requests_wait_placed(struct requests *r, int timeout_ms);
/* The return path's failure, 0 while it reads. */
int requests_error(struct requests *r);
struct requests_stats requests_stats(struct requests *r);
/* Stop reading (shuts main's reading side) and free. */
void requests_stop(struct requests *r);

#endif
