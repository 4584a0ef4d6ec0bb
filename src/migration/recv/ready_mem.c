#include "migration/recv/ready_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/page.h"

struct ready_mem {
	pthread_mutex_t lock; /* taken alone; protects everything below */
	struct guest_mem mem; /* mapped while READY or LENT */
	struct ready_info info;
	pthread_t thread; /* the asynchronous preparation, if joinable */
	bool joinable;
};

const char *ready_state_name(enum ready_state s)
{
	static const char *const names[] = { "none", "preparing", "ready", "lent", "kept", "failed" };

	return names[s];
}

int ready_mem_create(struct ready_mem **out)
{
	struct ready_mem *r = calloc(1, sizeof(*r));

	if (!r)
		return err_set(-ENOMEM, "out of memory");
	pthread_mutex_init(&r->lock, NULL);
	r->mem.memfd = -1;
	*out = r;
	return 0;
}

static void join(struct ready_mem *r)
{
	if (r->joinable)
		pthread_join(r->thread, NULL);
	r->joinable = false;
}

void ready_mem_free(struct ready_mem *r)
{
	if (!r)
		return;
	join(r);
	mem_destroy(&r->mem);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Under the lock: may memory be prepared now? Marks it PREPARING. */
static int claim_locked(struct ready_mem *r, uint64_t bytes, enum mem_backend backend)
{
	if (r->info.state == READY_PREPARING)
		return err_set(-EBUSY, "guest memory is being prepared already");
	if (r->info.state == READY_LENT)
		return err_set(-EBUSY, "an incoming migration is using the prepared memory");
	if (r->info.state == READY_KEPT)
		return err_set(-EBUSY, "the guest runs in the prepared memory");
	mem_destroy(&r->mem);
	r->info = (struct ready_info){ .state = READY_PREPARING, .bytes = bytes,
				       .backend = backend };
	return 0;
}

/* May memory be prepared now? Marks it PREPARING, and joins the last
 * preparation's thread (it ended: the state was not PREPARING). */
static int claim(struct ready_mem *r, uint64_t bytes, enum mem_backend backend)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = claim_locked(r, bytes, backend);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		join(r);
	return rc;
}

/* Map and fault in, without the lock; then publish the outcome. */
static int fill(struct ready_mem *r, uint64_t bytes, enum mem_backend backend)
{
	struct guest_mem mem;
	int rc = mem_create(&mem, bytes, backend);

	if (rc == 0 && (rc = mem_populate(&mem)) < 0)
		mem_destroy(&mem);
	pthread_mutex_lock(&r->lock);
	if (rc == 0) {
		r->mem = mem;
		r->info.state = READY_READY;
		r->info.populate_ms = mem.populate_ms;
	} else {
		r->info.state = READY_FAILED;
		snprintf(r->info.error, sizeof(r->info.error), "%s", err_msg());
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int ready_mem_prepare(struct ready_mem *r, uint64_t bytes, enum mem_backend backend)
{
	int rc = claim(r, bytes, backend);

	return rc < 0 ? rc : fill(r, bytes, backend);
}

static void *prepare_thread(void *arg)
{
	struct ready_mem *r = arg;

	pthread_setname_np(pthread_self(), "prepare-mem");
	fill(r, r->info.bytes, r->info.backend); /* fixed while PREPARING */
	return NULL;
}

int ready_mem_prepare_async(struct ready_mem *r, uint64_t bytes, enum mem_backend backend)
{
	int rc = claim(r, bytes, backend);

	if (rc < 0)
		return rc;
	rc = pthread_create(&r->thread, NULL, prepare_thread, r);
	if (rc) {
		pthread_mutex_lock(&r->lock);
		r->info.state = READY_NONE;
		pthread_mutex_unlock(&r->lock);
		return err_set(-rc, "cannot start a thread to prepare memory: %s", strerror(rc));
	}
	r->joinable = true;
	return 0;
}

int ready_mem_lend(struct ready_mem *r, uint64_t bytes, const struct guest_mem **out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&r->lock);
	if (r->info.state == READY_READY && bytes <= r->mem.size) {
		r->info.state = READY_LENT;
		*out = &r->mem;
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* Zero each run of written pages. */
static void zero_written(struct guest_mem *mem, const uint64_t *written, uint64_t npages)
{
	uint64_t g = bitmap_next(written, npages, 0);

	while (g < npages) {
		uint64_t end = g + 1;

		while (end < npages && bitmap_test(written, end))
			end++;
		memset(mem->regions[0].host + g * FERRY_PAGE_SIZE, 0, (end - g) * FERRY_PAGE_SIZE);
		g = bitmap_next(written, npages, end);
	}
}

/* While LENT nobody else touches r->mem: it is zeroed without the lock. */
void ready_mem_give_back(struct ready_mem *r, const uint64_t *written, uint64_t npages)
{
	if (written)
		zero_written(&r->mem, written, npages);
	pthread_mutex_lock(&r->lock);
	r->info.state = READY_READY;
	pthread_mutex_unlock(&r->lock);
}

void ready_mem_keep(struct ready_mem *r, struct guest_mem *view)
{
	pthread_mutex_lock(&r->lock);
	mem_keep(view, &r->mem);
	r->info.state = READY_KEPT;
	r->info.bytes = view->size;
	pthread_mutex_unlock(&r->lock);
}

void ready_mem_release(struct ready_mem *r)
{
	pthread_mutex_lock(&r->lock);
	if (r->info.state == READY_READY) {
		mem_destroy(&r->mem);
		r->info.state = READY_NONE;
	}
	pthread_mutex_unlock(&r->lock);
}

struct ready_info ready_mem_info(struct ready_mem *r)
{
	struct ready_info info;

	pthread_mutex_lock(&r->lock);
	info = r->info;
	pthread_mutex_unlock(&r->lock);
	return info;
}
