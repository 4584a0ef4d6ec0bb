#include "migration/send/requests.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec/zero.h"
#include "migration/failure.h"
#include "migration/handshake.h"
#include "migration/send/batch.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/memory.h"

struct requests {
	struct requests_source src;
	uint64_t npages;
	uint64_t hint; /* atomic */
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t changed;
	bool placed;
	struct failure failed;
	struct requests_stats st;
};

/* Pages gfns[0..n) (n <= BATCH_PAGES) on the urgent channel, from the
 * paused guest's memory itself. */
static int send_pages(struct requests *r, const uint64_t *gfns, uint32_t n)
{
	struct rec_pages fixed = { .count = n, .round = r->src.round };
	uint64_t entries[BATCH_PAGES];
	struct iovec iov[2 + BATCH_PAGES] = { { &fixed, sizeof(fixed) }, { entries, 8ull * n } };
	int k = 2;

	for (uint32_t i = 0; i < n; i++) {
		void *page = mem_host(r->src.mem, gfns[i] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
		bool zero = zero_page(page);

		entries[i] = PAGE_ENTRY(gfns[i], zero ? PAGE_ZERO : PAGE_RAW);
		if (!zero)
			iov[k++] = (struct iovec){ page, FERRY_PAGE_SIZE };
		bitmap_test_and_clear_atomic(r->src.pending, gfns[i]); /* the push skips it */
	}
	return wire_send(r->src.urgent, REC_PAGES, iov, k);
}

/* A REQUEST: its pages now, BATCH_PAGES to a record. */
static int answer(struct requests *r, const struct request_view *v)
{
	int rc = 0;

	for (uint32_t at = 0; at < v->count && rc == 0; at += BATCH_PAGES)
		rc = send_pages(r, v->gfn + at,
				v->count - at < BATCH_PAGES ? v->count - at : BATCH_PAGES);
	__atomic_store_n(&r->hint, v->gfn[v->count - 1] + 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&r->lock);
	r->st.records++;
	r->st.pages += v->count;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
	return rc < 0 ? err_wrap(rc, "the urgent channel") : 0;
}

/* One record from the destination; 1 at PLACED. */
static int take(struct requests *r, const struct rec_header *hdr, const struct wire_buf *buf)
{
	struct request_view v;
	int rc = 0;

	switch (hdr->type) {
	case REC_REQUEST:
		rc = rec_parse_request(buf->data, hdr->length, r->npages, &v);
		return rc < 0 ? rc : answer(r, &v);
	case REC_RESUMED:
		pthread_mutex_lock(&r->lock);
		r->st.resumed_ns = time_now_ns();
		pthread_mutex_unlock(&r->lock);
		return 0;
	case REC_PLACED:
		pthread_mutex_lock(&r->lock);
		rc = rec_parse_placed(buf->data, hdr->length, &r->st.placed);
		pthread_mutex_unlock(&r->lock);
		return rc < 0 ? rc : 1;
	case REC_ERROR:
		pthread_mutex_lock(&r->lock);
		r->st.told = true;
		pthread_mutex_unlock(&r->lock);
		return handshake_refusal(buf, hdr->length);
	}
	return err_set(-EPROTO, "unexpected %s record from the destination during post-copy",
		       rec_type_name(hdr->type));
}

static void *reader_thread(void *arg)
{
	struct requests *r = arg;
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	int rc;

	pthread_setname_np(pthread_self(), "pc-requests");
	do {
		/* The destination may have nothing to ask for a long time. */
		while ((rc = chan_wait_ready(r->src.main, POLLIN)) == -ETIMEDOUT)
			;
		if (rc == 0)
			rc = wire_recv(r->src.main, &hdr, &buf);
		if (rc == 0)
			rc = take(r, &hdr, &buf);
	} while (rc == 0);
	wire_buf_free(&buf);
	pthread_mutex_lock(&r->lock);
	if (rc == 1)
		r->placed = true;
	else
		failure_set(&r->failed, err_wrap(rc, "the return path"));
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int requests_start(const struct requests_source *src, struct requests **out)
{
	struct requests *r = calloc(1, sizeof(*r));
	int rc;

	*out = r;
	if (!r)
		return err_set(-ENOMEM, "out of memory for post-copy");
	r->src = *src;
	r->npages = src->mem->size / FERRY_PAGE_SIZE;
	pthread_mutex_init(&r->lock, NULL);
	time_cond_init(&r->changed);
	failure_init(&r->failed);
	rc = pthread_create(&r->thread, NULL, reader_thread, r);
	if (rc) {
		pthread_cond_destroy(&r->changed);
		pthread_mutex_destroy(&r->lock);
		failure_destroy(&r->failed);
		free(r);
		*out = NULL;
		return err_set(-rc, "cannot start the post-copy return path: %s", strerror(rc));
	}
	return 0;
}

uint64_t requests_hint(struct requests *r)
{
	return __atomic_load_n(&r->hint, __ATOMIC_RELAXED);
}

int requests_wait_placed(struct requests *r, int timeout_ms)
{
	struct timespec until = time_deadline_in_ms(timeout_ms);
	uint64_t heard;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	heard = r->st.records;
	while (!r->placed && !failure_get(&r->failed) && rc != ETIMEDOUT) {
		rc = pthread_cond_timedwait(&r->changed, &r->lock, &until);
		if (r->st.records != heard) { /* the destination is alive: wait on */
			heard = r->st.records;
			until = time_deadline_in_ms(timeout_ms);
			rc = 0;
		}
	}
	if (r->placed)
		rc = 0;
	else if (failure_get(&r->failed))
		rc = failure_get(&r->failed);
	else
		rc = err_set(-ETIMEDOUT, "the destination said nothing for %.1f s",
			     timeout_ms / 1000.0);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int requests_error(struct requests *r)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = failure_get(&r->failed);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

struct requests_stats requests_stats(struct requests *r)
{
	struct requests_stats s;

	pthread_mutex_lock(&r->lock);
	s = r->st;
	pthread_mutex_unlock(&r->lock);
	return s;
}

void requests_stop(struct requests *r)
{
	if (!r)
		return;
	chan_shutdown_read(r->src.main);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->changed);
	pthread_mutex_destroy(&r->lock);
	failure_destroy(&r->failed);
	free(r);
}
