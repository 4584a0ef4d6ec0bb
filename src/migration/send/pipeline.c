#include "migration/send/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/compress.h"
#include "migration/failure.h"
#include "migration/handshake.h"
#include "migration/send/autocomp.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/time.h"

_Static_assert((int)ZPAGES_LZ4 == (int)COMPRESS_LZ4 && (int)ZPAGES_ZSTD == (int)COMPRESS_ZSTD,
	       "a codec's number on the wire is its compress_kind");

struct worker {
	struct pipeline *p;
	uint32_t index;
	struct chan *chan;
	struct chan own; /* a data channel's connection */
	struct compressor codec[COMPRESS_KINDS];
	uint8_t *frame, *gather;
	uint64_t round_pages, rate_bps; /* rate_bps: this data channel's share */
	struct channel_stats st;	/* under p->lock */
	pthread_t thread;
	bool started;
};

struct pipeline {
	struct mig_params params;
	uint32_t nworkers; /* data channels, or 1: the main channel, inline */
	struct worker *w;
	struct batch *batches;
	uint32_t nbatches;
	struct failure failed; /* the first worker failure */

	/* Lock order: p->lock may be taken while holding nothing else, and
	 * nothing is taken under it. */
	pthread_mutex_t lock; /* guards everything below, and every worker's st */
	pthread_cond_t changed;
	struct batch *free, *todo, **todo_tail;
	uint32_t busy; /* batches a worker holds */
	bool stop;
	uint64_t rate_bps;
	struct autocomp ac;
};

/* No data channels: the migration thread sends on the main channel. */
static bool on_main(const struct pipeline *p)
{
	return !p->params.channels;
}

/* The worker's context for codec c, made on first use. */
static struct compressor *context(struct worker *w, enum compress_kind c)
{
	struct compressor *z = &w->codec[c];
	int level = w->p->params.compress.kind == COMPRESS_ZSTD ? w->p->params.compress.level : 1;

	if (!z->backend && compressor_init(z, c, level) < 0)
		return NULL;
	return z;
}

/* The payload as one buffer: in place if it is one piece already. */
static const uint8_t *contiguous(struct worker *w, const struct batch *b)
{
	size_t at = 0;

	if (b->niov == 1)
		return b->iov[0].iov_base;
	for (int i = 0; i < b->niov; i++) {
		memcpy(w->gather + at, b->iov[i].iov_base, b->iov[i].iov_len);
		at += b->iov[i].iov_len;
	}
	return w->gather;
}

/* Compress the payload with c into w->frame: its length, or -ENOSPC if it
 * does not shrink enough; with auto, the model learns how it went. */
static long compress(struct worker *w, enum compress_kind c, const uint8_t *in,
		     const struct batch *b)
{
	struct pipeline *p = w->p;
	struct compressor *z = context(w, c);
	uint64_t t0 = time_now_ns(), cpu0 = time_thread_cpu_ns();
	long n;

	if (!z)
		return -ENOMEM;
	n = z->backend->compress(z, in, b->payload_len, w->frame,
				 b->payload_len - b->payload_len / BATCH_SHRINK_MIN);
	pthread_mutex_lock(&p->lock);
	w->st.compress_cpu_ns += time_thread_cpu_ns() - cpu0;
	if (p->params.compress.automatic)
		autocomp_observe_codec(&p->ac, c, b->payload_len,
				       n > 0 ? (uint64_t)n : b->payload_len, time_now_ns() - t0,
				       time_now_ns());
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Auto: the codec for this batch, after sampling the others if due. */
static enum compress_kind choose(struct worker *w, const struct batch *b, const uint8_t **in)
{
	struct pipeline *p = w->p;
	enum compress_kind c;

	for (int s = COMPRESS_LZ4; s < COMPRESS_KINDS; s++) {
		bool due;

		pthread_mutex_lock(&p->lock);
		due = autocomp_take_sample(&p->ac, (enum compress_kind)s, time_now_ns());
		pthread_mutex_unlock(&p->lock);
		if (!due)
			continue;
		if (!*in)
			*in = contiguous(w, b);
		if (compress(w, (enum compress_kind)s, *in, b) == -ENOMEM)
			break; /* the batch's own compression reports it */
	}
	pthread_mutex_lock(&p->lock);
	c = autocomp_next(&p->ac);
	pthread_mutex_unlock(&p->lock);
	return c;
}

static int send_raw(struct worker *w, const struct batch *b)
{
	struct rec_pages fixed = { .count = b->count, .round = b->round };
	struct iovec iov[BATCH_PAGES + 3] = { { &fixed, sizeof(fixed) },
					      { (void *)b->entries, b->count * 8ull },
					      { (void *)b->hashes, b->raw * 8ull } };

	memcpy(iov + 3, b->iov, (size_t)b->niov * sizeof(*iov));
	if (b->live)
		return wire_send_live(w->chan, iov, b->niov + 3, b->checksum);
	if (b->hashed)
		return wire_send_hashed(w->chan, REC_PAGES, iov, b->niov + 3, b->checksum);
	return wire_send(w->chan, REC_PAGES, iov, b->niov + 3);
}

static int send_frame(struct worker *w, const struct batch *b, const uint8_t *in,
		      enum compress_kind c, long n)
{
	struct rec_zpages fixed = { .count = b->count,
				    .round = b->round,
				    .codec = c,
				    .payload_len = b->payload_len,
				    .payload_hash = hash64(in, b->payload_len) };
	struct iovec iov[3] = { { &fixed, sizeof(fixed) },
				{ (void *)b->entries, b->count * 8ull },
				{ w->frame, (size_t)n } };

	return wire_send(w->chan, REC_ZPAGES, iov, 3);
}

/* Count a batch that went out (n: its frame's length, or <= 0: raw). */
static void account(struct worker *w, const struct batch *b, enum compress_kind c, long n,
		    uint64_t sent0, uint64_t wait0)
{
	struct pipeline *p = w->p;

	pthread_mutex_lock(&p->lock);
	w->st.bytes = w->chan->bytes_sent;
	w->st.raw_bytes += b->payload_len;
	w->st.wire_bytes += n > 0 ? (uint64_t)n : b->payload_len;
	w->st.batches++;
	w->st.compressed += n > 0;
	w->st.skipped += c != COMPRESS_NONE && b->payload_len && n <= 0;
	w->st.wait_ns = w->chan->write_wait_ns;
	if (p->params.compress.automatic)
		autocomp_observe_send(&p->ac, b->payload_len, w->chan->bytes_sent - sent0,
				      w->chan->write_wait_ns - wait0, time_now_ns());
	pthread_mutex_unlock(&p->lock);
	w->round_pages += b->count;
}

/* One batch out on w's channel, compressed if the codec in force shrinks it. */
static int send_batch(struct worker *w, const struct batch *b)
{
	struct pipeline *p = w->p;
	enum compress_kind c = p->params.compress.kind;
	uint64_t sent0 = w->chan->bytes_sent, wait0 = w->chan->write_wait_ns;
	const uint8_t *in = NULL;
	long n = -ENOSPC;
	int rc;

	if (p->params.compress.automatic && b->payload_len)
		c = choose(w, b, &in);
	if (c != COMPRESS_NONE && b->payload_len) {
		if (!in)
			in = contiguous(w, b);
		n = compress(w, c, in, b);
		if (n == -ENOMEM)
			return err_set(-ENOMEM, "out of memory for compression");
	}
	rc = n > 0 ? send_frame(w, b, in, c, n) : send_raw(w, b);
	account(w, b, c, n, sent0, wait0);
	return rc;
}

/* Make every worker's blocked write fail: its own sockets, which only
 * pipeline_close closes, after joining them. */
static void shut_channels(struct pipeline *p)
{
	for (uint32_t i = 0; !on_main(p) && i < p->nworkers; i++)
		chan_shutdown(&p->w[i].own);
}

/* The first failure stops the pipeline; its sentence is what the user reads. */
static void fail(struct pipeline *p, int rc)
{
	failure_set(&p->failed, rc);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	shut_channels(p);
}

static void give_back(struct pipeline *p, struct batch *b)
{
	b->next = p->free;
	p->free = b;
	pthread_cond_broadcast(&p->changed);
}

/* The next batch to send, or NULL once stopped. Under p->lock. */
static struct batch *next_todo(struct pipeline *p, struct worker *w)
{
	struct batch *b;

	while (!p->todo && !p->stop)
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->stop)
		return NULL;
	b = p->todo;
	p->todo = b->next;
	if (!p->todo)
		p->todo_tail = &p->todo;
	p->busy++;
	if (w->rate_bps != p->rate_bps / p->nworkers) {
		w->rate_bps = p->rate_bps / p->nworkers;
		ratelimit_set(&w->chan->rl, w->rate_bps);
	}
	return b;
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct pipeline *p = w->p;
	char name[16];

	snprintf(name, sizeof(name), "mig-chan%u", w->index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		struct batch *b;
		int rc;

		pthread_mutex_lock(&p->lock);
		b = next_todo(p, w);
		pthread_mutex_unlock(&p->lock);
		if (!b)
			return NULL;
		rc = send_batch(w, b);
		pthread_mutex_lock(&p->lock);
		p->busy--;
		give_back(p, b);
		pthread_mutex_unlock(&p->lock);
		if (rc < 0) {
			fail(p, err_wrap(rc, "data channel %u", w->index));
			return NULL;
		}
	}
}

int pipeline_batch(struct pipeline *p, struct batch **out)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->free && !p->stop)
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->stop) {
		rc = -EPIPE;
	} else {
		*out = p->free;
		p->free = (*out)->next;
	}
	pthread_mutex_unlock(&p->lock);
	if (rc == 0)
		return 0;
	rc = failure_get(&p->failed);
	return rc ? rc : err_set(-ECANCELED, "the page pipeline was closed");
}

int pipeline_submit(struct pipeline *p, struct batch *b)
{
	int rc = 0;

	if (on_main(p)) { /* the main channel's rate is the source's to set */
		rc = send_batch(&p->w[0], b);
		pthread_mutex_lock(&p->lock);
		give_back(p, b);
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	pthread_mutex_lock(&p->lock);
	b->next = NULL;
	*p->todo_tail = b;
	p->todo_tail = &b->next;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return failure_get(&p->failed);
}

static int drain(struct pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	while ((p->todo || p->busy) && !p->stop)
		pthread_cond_wait(&p->changed, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return failure_get(&p->failed);
}

/* The workers are idle: bring their byte counts up to date. */
static void count_bytes(struct pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < p->nworkers; i++)
		p->w[i].st.bytes = p->w[i].chan->bytes_sent;
	pthread_mutex_unlock(&p->lock);
}

int pipeline_end_round(struct pipeline *p, uint32_t round)
{
	int rc = drain(p);

	if (on_main(p))
		return rc;
	/* The workers are idle until the next submit: their channels are ours. */
	for (uint32_t i = 0; i < p->nworkers && rc == 0; i++) {
		struct rec_round marker = { .round = round, .pages = p->w[i].round_pages };
		struct iovec body = { &marker, sizeof(marker) };

		p->w[i].round_pages = 0;
		rc = wire_send(&p->w[i].own, REC_ROUND, &body, 1);
		if (rc < 0)
			err_wrap(rc, "data channel %u", i);
	}
	count_bytes(p);
	return rc;
}

int pipeline_end(struct pipeline *p)
{
	int rc = drain(p);

	for (uint32_t i = 0; i < p->nworkers && rc == 0 && !on_main(p); i++)
		rc = wire_send_empty(&p->w[i].own, REC_END);
	count_bytes(p);
	return rc;
}

void pipeline_counters(struct pipeline *p, struct pipeline_counters *out)
{
	*out = (struct pipeline_counters){ 0 };
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < p->nworkers; i++) {
		out->raw_bytes += p->w[i].st.raw_bytes;
		out->wire_bytes += p->w[i].st.wire_bytes;
		if (!on_main(p))
			out->bytes += p->w[i].st.bytes;
	}
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; i < p->nworkers && !on_main(p); i++)
		out->queued += chan_queued(&p->w[i].own);
}

void pipeline_set_rate(struct pipeline *p, uint64_t max_bandwidth_bps)
{
	pthread_mutex_lock(&p->lock);
	p->rate_bps = max_bandwidth_bps;
	pthread_mutex_unlock(&p->lock);
}

void pipeline_stats(struct pipeline *p, struct mig_stats *s)
{
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < p->nworkers; i++)
		s->chan[i] = p->w[i].st;
	autocomp_report(&p->ac, &s->codec);
	if (!p->params.compress.automatic)
		s->codec.now =
			(struct codec_plan){ p->params.compress.kind, p->params.compress.kind, 0 };
	pthread_mutex_unlock(&p->lock);
}

static int make_batches(struct pipeline *p, uint32_t n)
{
	p->batches = calloc(n, sizeof(*p->batches));
	if (!p->batches)
		return -ENOMEM;
	p->nbatches = n;
	for (uint32_t i = 0; i < n; i++) {
		p->batches[i].buf = malloc(BATCH_BUF_BYTES);
		if (!p->batches[i].buf)
			return -ENOMEM;
		give_back(p, &p->batches[i]);
	}
	return 0;
}

static int make_workers(struct pipeline *p, struct chan *main)
{
	size_t bytes = BATCH_PAGES * FERRY_PAGE_SIZE;

	p->w = calloc(p->nworkers, sizeof(*p->w));
	if (!p->w)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		w->index = i;
		w->own.fd = -1;
		w->chan = on_main(p) ? main : &w->own;
		w->frame = malloc(compress_bound(bytes));
		w->gather = malloc(bytes);
		if (!w->frame || !w->gather)
			return -ENOMEM;
	}
	return 0;
}

void pipeline_watch(struct pipeline *p, const struct chan *main)
{
	for (uint32_t i = 0; i < p->params.channels; i++)
		p->w[i].own.speaker = main;
}

int pipeline_open(const char *uri, struct chan *main, const struct mig_params *params,
		  const uint8_t *token, const struct cancel *cancel, const struct tls_creds *tls,
		  struct pipeline **out)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int rc;

	if (!p)
		return err_set(-ENOMEM, "out of memory");
	p->params = *params;
	p->nworkers = params->channels ? params->channels : 1;
	p->todo_tail = &p->todo;
	p->rate_bps = params->max_bandwidth_bps;
	autocomp_init(&p->ac, p->nworkers < cpus ? p->nworkers : (unsigned)cpus, time_now_ns());
	failure_init(&p->failed);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	*out = p;
	rc = make_workers(p, main);
	/* Two batches per worker: one being sent, one being filled. */
	if (rc == 0)
		rc = make_batches(p, params->channels ? 2 * p->nworkers : 1);
	if (rc < 0)
		return err_set(rc, "out of memory for the page pipeline");
	for (uint32_t i = 0; i < params->channels; i++) {
		rc = handshake_join(&p->w[i].own, uri, i, token, (int)params->io_timeout_ms, cancel,
				    tls);
		if (rc < 0)
			return rc;
	}
	for (uint32_t i = 0; i < params->channels; i++) {
		rc = pthread_create(&p->w[i].thread, NULL, worker_thread, &p->w[i]);
		if (rc)
			return err_set(-rc, "cannot start a channel thread: %s", strerror(rc));
		p->w[i].started = true;
	}
	return 0;
}

void pipeline_close(struct pipeline *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	if (p->w)
		shut_channels(p); /* a worker blocked on a full socket lets go now */
	/* Every worker ends before any channel closes: a worker that fails
	 * shuts all of them down (fail()). */
	for (uint32_t i = 0; p->w && i < p->nworkers; i++)
		if (p->w[i].started)
			pthread_join(p->w[i].thread, NULL);
	for (uint32_t i = 0; p->w && i < p->nworkers; i++) {
		struct worker *w = &p->w[i];

		chan_close(&w->own);
		for (int c = 0; c < COMPRESS_KINDS; c++)
			compressor_free(&w->codec[c]);
		free(w->frame);
		free(w->gather);
	}
	for (uint32_t i = 0; i < p->nbatches; i++)
		free(p->batches[i].buf);
	free(p->batches);
	free(p->w);
	failure_destroy(&p->failed);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	free(p);
}
