#include "vm/prefault.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/memory.h"

#define STEP	(256ull << 10)
#define IDLE_NS (200 * NS_PER_US)

struct prefault {
	struct guest_mem *mem;
	struct prefault_yield yield;
	pthread_t thread;
	bool stop;     /* atomic */
	uint64_t done; /* bytes faulted in (atomic) */
};

/* Until the receivers wait for the link; false if asked to stop meanwhile. */
static bool wait_idle(struct prefault *p)
{
	while (p->yield.busy(p->yield.opaque)) {
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			return false;
		time_sleep_ns(IDLE_NS);
	}
	return !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

static void *prefault_thread(void *arg)
{
	struct prefault *p = arg;
	uint64_t t0 = time_now_ns();

	pthread_setname_np(pthread_self(), "prefault");
	/* Only on a core nobody else wants: the receivers fault their pages
	 * in anyway, so this is worth only the CPU nobody else uses. */
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &(struct sched_param){ 0 }))
		log_debug("prefault: no idle priority");
	for (unsigned i = 0; i < p->mem->nr_regions; i++) {
		struct mem_region *r = &p->mem->regions[i];

		for (uint64_t off = 0; off < r->size; off += STEP) {
			if (!wait_idle(p))
				return NULL;
			/* Pages the receiver already wrote are left as they are. */
			if (madvise(r->host + off, r->size - off < STEP ? r->size - off : STEP,
				    MADV_POPULATE_WRITE) < 0) {
				log_warn("prefault stopped: %s", strerror(errno));
				return NULL;
			}
			__atomic_add_fetch(&p->done, STEP, __ATOMIC_RELAXED);
		}
	}
	log_info("faulted in %llu MiB of guest memory in the background in %.0f ms",
		 (unsigned long long)(p->mem->size >> 20), time_ms_since(t0));
	return NULL;
}

int prefault_start(struct guest_mem *mem, struct prefault_yield y, struct prefault **out)
{
	struct prefault *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return err_set(-ENOMEM, "out of memory");
	p->mem = mem;
	p->yield = y;
	rc = pthread_create(&p->thread, NULL, prefault_thread, p);
	if (rc) {
		free(p);
		return err_set(-rc, "cannot start the prefault thread: %s", strerror(rc));
	}
	*out = p;
	return 0;
}

double prefault_stop(struct prefault *p)
{
	double share;

	if (!p)
		return 0;
	__atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
	/* Its last step must not wait for an idle core: the switchover waits. */
	pthread_setschedparam(p->thread, SCHED_OTHER, &(struct sched_param){ 0 });
	pthread_join(p->thread, NULL);
	share = p->mem->size ? (double)p->done / (double)p->mem->size : 0;
	free(p);
	return share > 1 ? 1 : share;
}
