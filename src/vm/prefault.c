#include "vm/prefault.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/log.h"
#include "util/page.h"
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
	int err;       /* -ENOMEM once the host ran short (atomic; set after why) */
	char why[256];
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

/* Fault [p, p + len) in for writing, one touch a page, without changing a
 * byte: a compare-and-swap of a byte with itself is a write (a failed one
 * too), and a receiver's write to the same page cannot be lost to it. Not
 * MADV_POPULATE_WRITE: that holds the process's mmap lock, and this thread
 * at idle priority can be kept off the CPU for seconds while it does;
 * anything that then maps memory (malloc, ThreadSanitizer's shadow) queues
 * for the lock and every receiver's page fault queues behind it (seen:
 * both data channels stalled 10 s). A plain fault takes only the guest
 * memory's own lock, which nothing else writes during a migration. Its
 * race with a receiver's write is by design: ThreadSanitizer skips it. */
static __attribute__((no_sanitize_thread)) void touch(uint8_t *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += FERRY_PAGE_SIZE) {
		uint8_t v = __atomic_load_n(p + off, __ATOMIC_RELAXED);

		__atomic_compare_exchange_n(p + off, &v, v, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
}

/* The host has no room left for guest memory: say so, and stop. */
static void *ran_short(struct prefault *p)
{
	snprintf(p->why, sizeof(p->why), "%s", err_msg());
	__atomic_store_n(&p->err, -ENOMEM, __ATOMIC_RELEASE);
	log_warn("prefault: %s", p->why);
	if (p->yield.ran_short)
		p->yield.ran_short(p->yield.opaque);
	return NULL;
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
			uint64_t left = r->size - off;

			if (!wait_idle(p))
				return NULL;
			if (off % MEM_CLAIM_STEP == 0 &&
			    mem_claim_check(p->mem, r->host + off,
					    left < MEM_CLAIM_STEP ? left : MEM_CLAIM_STEP,
					    __atomic_load_n(&p->done, __ATOMIC_RELAXED)) < 0)
				return ran_short(p);
			touch(r->host + off, left < STEP ? left : STEP);
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

double prefault_progress(const struct prefault *p)
{
	uint64_t done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
	double share = p->mem->size ? (double)done / (double)p->mem->size : 0;

	return share > 1 ? 1 : share;
}

int prefault_failed(const struct prefault *p)
{
	int err = p ? __atomic_load_n(&p->err, __ATOMIC_ACQUIRE) : 0;

	return err ? err_set(err, "%s", p->why) : 0;
}

int prefault_stop(struct prefault *p, double *share)
{
	int rc;

	if (share)
		*share = 0;
	if (!p)
		return 0;
	__atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
	/* Its last step must not wait for an idle core: the switchover waits. */
	pthread_setschedparam(p->thread, SCHED_OTHER, &(struct sched_param){ 0 });
	pthread_join(p->thread, NULL);
	if (share)
		*share = prefault_progress(p);
	rc = prefault_failed(p);
	free(p);
	return rc;
}
