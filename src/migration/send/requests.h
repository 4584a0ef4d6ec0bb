/* The source's return path during post-copy: a thread reads what the
 * destination says on the main channel once COMMIT is out. RESUMED (the
 * guest runs there), REQUEST (pages a thread there waits for: queued for
 * the migration thread to send ahead of the push), PLACED (every page is
 * there), or ERROR. */
#ifndef FERRY_MIGRATION_SEND_REQUESTS_H
#define FERRY_MIGRATION_SEND_REQUESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/format.h"

struct chan;
struct requests;

struct requests_stats {
	uint64_t records, pages;  /* REQUEST records, pages asked for */
	uint64_t resumed_ns;	  /* when RESUMED came (time_now_ns), 0 before */
	struct rec_placed placed; /* the destination's account, once PLACED came */
	bool refused;		  /* ERROR before RESUMED: the guest did not start there */
};

/* Start reading main (npages: the guest's pages). */
int requests_start(struct chan *main, uint64_t npages, struct requests **out);
/* Up to max pages asked for and not yet taken, oldest first. */
uint32_t requests_take(struct requests *r, uint64_t *gfns, uint32_t max);
/* Wait up to timeout_ms for something: 1 once PLACED came, 0 when pages
 * are asked for, -ETIMEDOUT if nothing came, or -errno (a sentence) once
 * the return path failed. */
int requests_wait(struct requests *r, int timeout_ms);
struct requests_stats requests_stats(struct requests *r);
/* Stop reading (shuts main's reading side) and free. */
void requests_stop(struct requests *r);

#endif
