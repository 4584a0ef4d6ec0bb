#include "migration/send/requests.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migration/failure.h"
#include "migration/handshake.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/time.h"

/* Pages asked for and not yet taken: more are dropped (each is asked for
 * again by its next fault; the push brings it meanwhile). */
#define QUEUE_PAGES 65536u

struct requests {
	struct chan *main;
	uint64_t npages;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t changed;
	uint64_t queue[QUEUE_PAGES];
	uint32_t head, len;
	bool placed;
	struct failure failed;
	struct requests_stats st;
};

static void enqueue(struct requests *r, const struct request_view *v)
{
	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < v->count && r->len < QUEUE_PAGES; i++)
		r->queue[(r->head + r->len++) % QUEUE_PAGES] = v->gfn[i];
	r->st.records++;
	r->st.pages += v->count;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
}

/* One record from the destination; 1 at PLACED. */
static int take(struct requests *r, const struct rec_header *hdr, const struct wire_buf *buf)
{
	struct request_view v;
	int rc = 0;

	switch (hdr->type) {
	case REC_REQUEST:
		rc = rec_parse_request(buf->data, hdr->length, r->npages, &v);
		if (rc == 0)
			enqueue(r, &v);
		return rc;
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
		r->st.refused = !r->st.resumed_ns;
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
		while ((rc = chan_wait_ready(r->main, POLLIN)) == -ETIMEDOUT)
			;
		if (rc == 0)
			rc = wire_recv(r->main, &hdr, &buf);
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

int requests_start(struct chan *main, uint64_t npages, struct requests **out)
{
	struct requests *r = calloc(1, sizeof(*r));
	int rc;

	*out = r;
	if (!r)
		return err_set(-ENOMEM, "out of memory for post-copy");
	r->main = main;
	r->npages = npages;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->changed, NULL);
	failure_init(&r->failed);
	rc = pthread_create(&r->thread, NULL, reader_thread, r);
	if (rc) {
		*out = NULL;
		requests_stop(r);
		return err_set(-rc, "cannot start the post-copy return path: %s", strerror(rc));
	}
	return 0;
}

uint32_t requests_take(struct requests *r, uint64_t *gfns, uint32_t max)
{
	uint32_t n = 0;

	pthread_mutex_lock(&r->lock);
	for (; n < max && r->len; n++, r->len--) {
		gfns[n] = r->queue[r->head];
		r->head = (r->head + 1) % QUEUE_PAGES;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

static struct timespec deadline(int timeout_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

int requests_wait(struct requests *r, int timeout_ms)
{
	struct timespec until = deadline(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->len && !r->placed && !failure_get(&r->failed) && rc == 0)
		rc = pthread_cond_timedwait(&r->changed, &r->lock, &until);
	if (r->len)
		rc = 0;
	else if (r->placed)
		rc = 1;
	else if (failure_get(&r->failed))
		rc = failure_get(&r->failed);
	else
		rc = err_set(-ETIMEDOUT, "the destination said nothing for %.1f s",
			     timeout_ms / 1000.0);
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
	chan_shutdown_read(r->main);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->changed);
	pthread_mutex_destroy(&r->lock);
	failure_destroy(&r->failed);
	free(r);
}
