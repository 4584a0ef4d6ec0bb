/* The destination's side of post-copy: the guest runs here before all its
 * memory has come. The pages the source has still to send (its POSTCOPY
 * records) are forgotten and watched by a userfaultfd (vm/uffd.h): a
 * thread that touches one waits, while the fault thread asks the source
 * for it (REQUEST on the return path). Every page that comes, asked for or
 * pushed, is placed whole (postcopy_place; the page writers call it); when
 * the last is in, PLACED tells the source. The guest cannot run without
 * the source from the switch until then. When the link breaks, the guest
 * runs on (a vCPU that needs a missing page waits) until a new link takes
 * over (postcopy_detach, postcopy_attach); a source lost is a guest lost. */
#ifndef FERRY_MIGRATION_RECV_POSTCOPY_H
#define FERRY_MIGRATION_RECV_POSTCOPY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "stream/format.h"
#include "util/latency.h"

struct chan;
struct postcopy;
struct vm;

struct postcopy_stats {
	uint64_t pending;	/* pages still to come at the switch */
	uint64_t left;		/* of those, not yet placed */
	uint64_t faults;	/* page faults the fault thread read */
	uint64_t asked, pushed; /* pages placed after a request, and without one */
	struct latency latency; /* from a page's request to its placing */
	uint32_t vcpus;
	uint64_t blocked_ns[PLACED_MAX_VCPUS]; /* how long each vCPU waited for pages */
};

/* Take over pending (a bitmap of vm's pages, freed by postcopy_end),
 * forget those pages (but the ones in forgotten, if not NULL: gone
 * already), watch them and start the fault thread; main is the
 * return path (writes on it go through postcopy_send from now on). hashes:
 * each page's hash to check before it is placed, or NULL. */
int postcopy_begin(struct vm *vm, uint64_t *pending, const uint64_t *forgotten,
		   const uint64_t *hashes, struct chan *main, struct postcopy **out);
/* Page gfn came (data NULL: zeros): place it, unless it is there already.
 * After the last pending page, PLACED goes out. 0 or -errno. */
int postcopy_place(struct postcopy *pc, uint64_t gfn, const void *data);
/* The guest runs (RESUMED is out): with no page to come, PLACED now. */
int postcopy_running(struct postcopy *pc);
/* A record on the return path, between the fault thread's. */
int postcopy_send(struct postcopy *pc, uint32_t type, const struct iovec *body, int n);
/* The link broke: the return path is gone until postcopy_attach (a page
 * a vCPU faults on meanwhile is asked for then). */
void postcopy_detach(struct postcopy *pc);
/* The link is back: main is the return path; every page asked for and not
 * yet placed is asked for again, and PLACED said again if none is left. */
int postcopy_attach(struct postcopy *pc, struct chan *main);
/* The pages still to come (set bits), for RECOVER; none is placed while
 * the link is down. */
const uint64_t *postcopy_pending(const struct postcopy *pc);
/* When the first page since postcopy_attach was placed (when it attached,
 * if none was left to come); 0: none yet. */
uint64_t postcopy_flowing_ns(struct postcopy *pc);
/* The first failure of the fault thread or of placing, 0 if none. */
int postcopy_error(struct postcopy *pc);
struct postcopy_stats postcopy_stats(struct postcopy *pc);
/* Stop the fault thread and let go of the memory's watch. */
void postcopy_end(struct postcopy *pc);

#endif
