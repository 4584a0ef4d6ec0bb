#include "migration/recv/postcopy.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "migration/failure.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/memory.h"
#include "vm/uffd.h"
#include "vm/vm.h"

/* How often the fault thread looks up from the faults to see if it should stop. */
#define FAULT_POLL_MS 50

/* A vCPU waiting for a page, and how long it waited in all. */
struct blocked {
	uint64_t gfn1;	   /* the page + 1; 0: none (atomic) */
	uint64_t since_ns; /* (atomic) */
	uint64_t total_ns; /* (atomic) */
};

struct postcopy {
	struct vm *vm;
	const struct guest_mem *mem;
	uint64_t npages;
	struct uffd uffd;
	uint64_t *pending;	   /* still to come: cleared as placed */
	uint64_t *asked_ns;	   /* when each page was asked for; 0: not */
	const uint64_t *hashes;	   /* NULL: no verify */
	struct chan *main;	   /* the return path; NULL while the link is down */
	pthread_mutex_t send_lock; /* the return path's writes, and main */
	uint64_t flowing_ns;	   /* the first page placed since postcopy_attach */
	struct failure failed;
	struct postcopy_stats st; /* counters: atomic */
	pthread_t thread;
	bool started, stop;
	struct blocked blocked[VM_MAX_VCPUS];
};

_Static_assert(PLACED_MAX_VCPUS >= VM_MAX_VCPUS, "PLACED has room for every vCPU");
_Static_assert(sizeof(((struct rec_placed *)0)->wait_hist) == 8 * LATENCY_POW2,
	       "PLACED carries the whole histogram");

/* The guest page at host address addr, or npages if none. */
static uint64_t gfn_at(const struct postcopy *pc, uint64_t addr)
{
	for (unsigned i = 0; i < pc->mem->nr_regions; i++) {
		const struct mem_region *r = &pc->mem->regions[i];
		uint64_t host = (uint64_t)(uintptr_t)r->host;

		if (addr >= host && addr - host < r->size)
			return (r->gpa + (addr - host)) / FERRY_PAGE_SIZE;
	}
	return pc->npages;
}

/* A vCPU's thread waits for page gfn from now (unless it did already). */
static void vcpu_waits(struct postcopy *pc, int tid, uint64_t gfn)
{
	int v = vm_vcpu_of_thread(pc->vm, tid);
	struct blocked *b = v >= 0 ? &pc->blocked[v] : NULL;

	if (!b || __atomic_load_n(&b->gfn1, __ATOMIC_ACQUIRE) == gfn + 1)
		return;
	__atomic_store_n(&b->since_ns, time_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&b->gfn1, gfn + 1, __ATOMIC_RELEASE);
}

/* Page gfn is in place at now: the vCPUs that waited for it run on. */
static void vcpus_run(struct postcopy *pc, uint64_t gfn, uint64_t now)
{
	for (unsigned v = 0; v < pc->vm->nr_vcpus; v++) {
		struct blocked *b = &pc->blocked[v];
		uint64_t want = gfn + 1;

		if (__atomic_load_n(&b->gfn1, __ATOMIC_ACQUIRE) == want &&
		    __atomic_compare_exchange_n(&b->gfn1, &want, 0, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			__atomic_fetch_add(&b->total_ns,
					   now - __atomic_load_n(&b->since_ns, __ATOMIC_RELAXED),
					   __ATOMIC_RELAXED);
	}
}

/* A fault: into list (unless its page came, or was asked for, already). */
static void note_fault(struct postcopy *pc, const struct uffd_fault *f, uint64_t *list, uint32_t *n)
{
	uint64_t gfn = gfn_at(pc, f->addr), never = 0;

	__atomic_fetch_add(&pc->st.faults, 1, __ATOMIC_RELAXED);
	if (gfn < pc->npages && bitmap_test_atomic(pc->pending, gfn))
		vcpu_waits(pc, f->tid, gfn);
	if (gfn >= pc->npages || !bitmap_test_atomic(pc->pending, gfn) ||
	    !__atomic_compare_exchange_n(&pc->asked_ns[gfn], &never, time_now_ns(), false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	list[(*n)++] = gfn;
}

/* A record on the return path; send_lock held. */
static int send_locked(struct postcopy *pc, uint32_t type, const struct iovec *body, int n)
{
	if (!pc->main)
		return err_set(-ENOTCONN, "the link to the source is down");
	return n ? wire_send(pc->main, type, body, n) : wire_send_empty(pc->main, type);
}

/* REQUEST for list[0..n), if n; send_lock held. */
static int ask(struct postcopy *pc, const uint64_t *list, uint32_t n)
{
	struct rec_request fixed = { .count = n };
	struct iovec body[2] = { { &fixed, sizeof(fixed) }, { (void *)list, 8ull * n } };

	return n ? send_locked(pc, REC_REQUEST, body, 2) : 0;
}

/* Every fault there is now, asked for in one REQUEST. */
static void *fault_thread(void *arg)
{
	struct postcopy *pc = arg;
	uint64_t list[REQUEST_MAX_COUNT];
	struct uffd_fault f;
	int rc = 0;

	pthread_setname_np(pthread_self(), "pc-faults");
	while (rc == 0 && !__atomic_load_n(&pc->stop, __ATOMIC_ACQUIRE)) {
		uint32_t n = 0;

		rc = uffd_next_fault(&pc->uffd, FAULT_POLL_MS, &f);
		while (rc == 0) {
			note_fault(pc, &f, list, &n);
			rc = n < REQUEST_MAX_COUNT ? uffd_next_fault(&pc->uffd, 0, &f) : 1;
		}
		if (rc == -ETIMEDOUT || rc == 1)
			rc = 0;
		if (rc == 0 && n) {
			pthread_mutex_lock(&pc->send_lock);
			if (ask(pc, list, n) < 0)
				err_clear(); /* the link broke: postcopy_attach asks again */
			pthread_mutex_unlock(&pc->send_lock);
		}
	}
	if (rc < 0)
		failure_set(&pc->failed, err_wrap(rc, "post-copy: asking for a page"));
	return NULL;
}

int postcopy_begin(struct vm *vm, uint64_t *pending, const uint64_t *forgotten,
		   const uint64_t *hashes, struct chan *main, struct postcopy **out)
{
	struct postcopy *pc = calloc(1, sizeof(*pc));
	const struct guest_mem *mem = &vm->mem;
	uint64_t npages = mem->size / FERRY_PAGE_SIZE, t0;
	double forgot_ms;
	int rc;

	*out = pc;
	if (!pc) {
		free(pending);
		return err_set(-ENOMEM, "out of memory for post-copy");
	}
	*pc = (struct postcopy){ .vm = vm,
				 .mem = mem,
				 .npages = npages,
				 .pending = pending,
				 .hashes = hashes,
				 .main = main,
				 .uffd = { -1 } };
	pthread_mutex_init(&pc->send_lock, NULL);
	failure_init(&pc->failed);
	pc->st.pending = pc->st.left = bitmap_count(pending, npages);
	pc->asked_ns = calloc(npages, 8);
	if (!pc->asked_ns)
		return err_set(-ENOMEM, "out of memory for post-copy");
	/* The switch's pause pays for it: freeing present pages, all of them
	 * on a preallocated destination. Hence FORGET, before it. */
	t0 = time_now_ns();
	mem_forget_set(mem, pending, forgotten, npages);
	forgot_ms = time_ms_since(t0);
	rc = uffd_open(&pc->uffd, mem);
	if (rc < 0)
		return rc;
	rc = pthread_create(&pc->thread, NULL, fault_thread, pc);
	if (rc)
		return err_set(-rc, "cannot start the post-copy fault thread: %s", strerror(rc));
	pc->started = true;
	log_info("post-copy: %llu pages (%llu MiB) still to come, forgotten in %.1f ms; the guest "
		 "may run now",
		 (unsigned long long)pc->st.pending,
		 (unsigned long long)(pc->st.pending * FERRY_PAGE_SIZE >> 20), forgot_ms);
	return 0;
}

static int check_hash(const struct postcopy *pc, uint64_t gfn, const void *data)
{
	static const uint8_t zeros[FERRY_PAGE_SIZE];

	if (!pc->hashes || hash64(data ? data : zeros, FERRY_PAGE_SIZE) == pc->hashes[gfn])
		return 0;
	return err_set(-EIO, "verify: page %#llx differs from the source's",
		       (unsigned long long)gfn * FERRY_PAGE_SIZE);
}

/* The last page is in: PLACED, with the account. */
static int say_placed(struct postcopy *pc)
{
	struct postcopy_stats s = postcopy_stats(pc);
	struct rec_placed placed = { .faults = s.faults,
				     .asked = s.asked,
				     .pushed = s.pushed,
				     .wait_p50_ns = latency_percentile_ns(&s.latency, 0.5),
				     .wait_p99_ns = latency_percentile_ns(&s.latency, 0.99),
				     .wait_max_ns = s.latency.max_ns,
				     .vcpus = s.vcpus };
	struct iovec body = { &placed, offsetof(struct rec_placed, blocked_ns) + 8ull * s.vcpus };

	memcpy(placed.blocked_ns, s.blocked_ns, sizeof(s.blocked_ns));
	latency_pow2(&s.latency, placed.wait_hist);

	log_info("post-copy: every page is here");
	return postcopy_send(pc, REC_PLACED, &body, 1);
}

/* gfn is in place: count it, and say PLACED after the last. */
static int count_placed(struct postcopy *pc, uint64_t gfn)
{
	uint64_t asked = __atomic_load_n(&pc->asked_ns[gfn], __ATOMIC_RELAXED);

	uint64_t now = time_now_ns(), never = 0;

	vcpus_run(pc, gfn, now);
	__atomic_compare_exchange_n(&pc->flowing_ns, &never, now, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	if (asked) {
		latency_add(&pc->st.latency, now - asked);
		__atomic_fetch_add(&pc->st.asked, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(&pc->st.pushed, 1, __ATOMIC_RELAXED);
	}
	if (__atomic_sub_fetch(&pc->st.left, 1, __ATOMIC_ACQ_REL))
		return 0;
	return say_placed(pc);
}

int postcopy_place(struct postcopy *pc, uint64_t gfn, const void *data)
{
	void *dst = mem_host(pc->mem, gfn * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
	int rc;

	if (!bitmap_test_atomic(pc->pending, gfn))
		return 0; /* here since the switch: nothing the source sends replaces it */
	rc = check_hash(pc, gfn, data);
	if (rc == 0)
		rc = data ? uffd_place(&pc->uffd, dst, data) : uffd_zero(&pc->uffd, dst);
	if (rc == 0 && bitmap_test_and_clear_atomic(pc->pending, gfn))
		rc = count_placed(pc, gfn);
	if (rc < 0)
		failure_set(&pc->failed, rc);
	return rc < 0 ? rc : 0;
}

int postcopy_running(struct postcopy *pc)
{
	return pc->st.pending ? 0 : say_placed(pc);
}

int postcopy_send(struct postcopy *pc, uint32_t type, const struct iovec *body, int n)
{
	int rc;

	pthread_mutex_lock(&pc->send_lock);
	rc = send_locked(pc, type, body, n);
	pthread_mutex_unlock(&pc->send_lock);
	return rc;
}

void postcopy_detach(struct postcopy *pc)
{
	pthread_mutex_lock(&pc->send_lock);
	pc->main = NULL;
	pthread_mutex_unlock(&pc->send_lock);
}

/* Every page asked for and not yet here, again (its answer may have been
 * lost with the link); the lock held. */
static int ask_again(struct postcopy *pc, uint64_t *total)
{
	uint64_t list[REQUEST_MAX_COUNT];
	uint32_t n = 0;
	int rc = 0;

	for (uint64_t g = bitmap_next_atomic(pc->pending, pc->npages, 0); g < pc->npages && rc == 0;
	     g = bitmap_next_atomic(pc->pending, pc->npages, g + 1)) {
		if (!__atomic_load_n(&pc->asked_ns[g], __ATOMIC_RELAXED))
			continue;
		list[n++] = g;
		(*total)++;
		if (n == REQUEST_MAX_COUNT) {
			rc = ask(pc, list, n);
			n = 0;
		}
	}
	return rc == 0 ? ask(pc, list, n) : rc;
}

int postcopy_attach(struct postcopy *pc, struct chan *main)
{
	uint64_t again = 0;
	int rc;

	pthread_mutex_lock(&pc->send_lock);
	pc->main = main;
	/* With no page to come, the link back is all there is to flow. */
	__atomic_store_n(&pc->flowing_ns,
			 __atomic_load_n(&pc->st.left, __ATOMIC_ACQUIRE) ? 0 : time_now_ns(),
			 __ATOMIC_RELAXED);
	rc = ask_again(pc, &again);
	pthread_mutex_unlock(&pc->send_lock);
	if (rc == 0 && again)
		log_info("post-copy: %llu pages its vCPUs wait for, asked for again",
			 (unsigned long long)again);
	/* PLACED may have been lost with the link. */
	return rc == 0 && !__atomic_load_n(&pc->st.left, __ATOMIC_ACQUIRE) ? say_placed(pc) : rc;
}

const uint64_t *postcopy_pending(const struct postcopy *pc)
{
	return pc->pending;
}

uint64_t postcopy_flowing_ns(struct postcopy *pc)
{
	return __atomic_load_n(&pc->flowing_ns, __ATOMIC_RELAXED);
}

int postcopy_error(struct postcopy *pc)
{
	return failure_get(&pc->failed);
}

struct postcopy_stats postcopy_stats(struct postcopy *pc)
{
	struct postcopy_stats s = { 0 };

	if (!pc)
		return s;
	s.pending = pc->st.pending;
	s.left = __atomic_load_n(&pc->st.left, __ATOMIC_RELAXED);
	s.faults = __atomic_load_n(&pc->st.faults, __ATOMIC_RELAXED);
	s.asked = __atomic_load_n(&pc->st.asked, __ATOMIC_RELAXED);
	s.pushed = __atomic_load_n(&pc->st.pushed, __ATOMIC_RELAXED);
	latency_copy(&s.latency, &pc->st.latency);
	s.vcpus = pc->vm->nr_vcpus;
	for (unsigned v = 0; v < s.vcpus; v++)
		s.blocked_ns[v] = __atomic_load_n(&pc->blocked[v].total_ns, __ATOMIC_RELAXED);
	return s;
}

void postcopy_end(struct postcopy *pc)
{
	if (!pc)
		return;
	__atomic_store_n(&pc->stop, true, __ATOMIC_RELEASE);
	if (pc->started)
		pthread_join(pc->thread, NULL);
	uffd_close(&pc->uffd);
	pthread_mutex_destroy(&pc->send_lock);
	failure_destroy(&pc->failed);
	free(pc->pending);
	free(pc->asked_ns);
	free(pc);
}
