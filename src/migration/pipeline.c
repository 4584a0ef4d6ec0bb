#include "migration/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/time.h"

/* A compressed frame must save at least 1/SHRINK_MIN of the batch, or the
 * batch goes raw (the destination's decompression would cost more). */
#define SHRINK_MIN 32

struct worker {
	struct pipeline *p;
	uint32_t index;
	struct chan *chan;
	struct chan own; /* a data channel's connection */
	struct compressor codec[AUTOCOMP_CODECS];
	uint8_t *frame, *gather;
	uint64_t round_pages, rate_bps; /* rate_bps: this data channel's share */
	struct channel_stats st;	/* under p->lock */
	pthread_t thread;
	bool started;
};

/* Fault injection for the tests (tests/e2e/test_channels.sh), from the
 * environment: FERRY_TEST_CORRUPT_BATCH=N damages the N-th compressed frame
 * before its checksum; FERRY_TEST_SLOW_CHANNEL=MS delays every batch on
 * data channel 0, so that the others overtake it. */
struct faults {
	long corrupt_batch;
	long slow_ms;
};

struct pipeline {
	struct mig_params params;
	uint32_t nworkers; /* data channels, or 1: the main channel, inline */
	struct worker *w;
	struct batch *batches;
	uint32_t nbatches;
	struct faults faults;

	pthread_mutex_t lock; /* protects everything below */
	pthread_cond_t changed;
	struct batch *free, *todo, **todo_tail;
	uint32_t busy; /* batches a worker holds */
	int err;
	char why[512];
	bool stop;
	uint64_t rate_bps;
	long compressed; /* frames so far, for the fault */
	struct autocomp ac;
};

/* No data channels: the migration thread sends on the main channel. */
static bool on_main(const struct pipeline *p)
{
	return !p->params.channels;
}

static enum autocomp_codec fixed_codec(const struct mig_compress *c)
{
	return c->kind == COMPRESS_LZ4	  ? AUTOCOMP_LZ4
	       : c->kind == COMPRESS_ZSTD ? AUTOCOMP_ZSTD
					  : AUTOCOMP_NONE;
}

/* The worker's context for codec c, made on first use. */
static struct compressor *context(struct worker *w, enum autocomp_codec c)
{
	struct compressor *z = &w->codec[c];
	int level = w->p->params.compress.kind == COMPRESS_ZSTD ? w->p->params.compress.level : 1;

	if (!z->backend &&
	    compressor_init(z, c == AUTOCOMP_LZ4 ? COMPRESS_LZ4 : COMPRESS_ZSTD, level) < 0)
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
 * does not shrink enough. Accounts CPU time; *wall_ns is the wall time. */
static long compress(struct worker *w, enum autocomp_codec c, const uint8_t *in,
		     const struct batch *b, uint64_t *wall_ns)
{
	struct compressor *z = context(w, c);
	uint64_t t0 = time_now_ns(), cpu0 = time_thread_cpu_ns();
	long n;

	if (!z)
		return -ENOMEM;
	n = z->backend->compress(z, in, b->payload_len, w->frame,
				 b->payload_len - b->payload_len / SHRINK_MIN);
	*wall_ns = time_now_ns() - t0;
	pthread_mutex_lock(&w->p->lock);
	w->st.compress_cpu_ns += time_thread_cpu_ns() - cpu0;
	pthread_mutex_unlock(&w->p->lock);
	return n;
}

/* compress(), and with auto, tell the model how it went. */
static long compress_observed(struct worker *w, enum autocomp_codec c, const uint8_t *in,
			      const struct batch *b)
{
	struct pipeline *p = w->p;
	uint64_t ns;
	long n = compress(w, c, in, b, &ns);

	if (n != -ENOMEM && p->params.compress.automatic) {
		pthread_mutex_lock(&p->lock);
		autocomp_observe_codec(&p->ac, c, b->payload_len,
				       n > 0 ? (uint64_t)n : b->payload_len, ns, time_now_ns());
		pthread_mutex_unlock(&p->lock);
	}
	return n;
}

/* Auto: the codec for this batch, after sampling the others if due. */
static enum autocomp_codec choose(struct worker *w, const struct batch *b, const uint8_t **in)
{
	struct pipeline *p = w->p;
	enum autocomp_codec c;

	for (int s = AUTOCOMP_LZ4; s < AUTOCOMP_CODECS; s++) {
		bool due;

		pthread_mutex_lock(&p->lock);
		due = autocomp_take_sample(&p->ac, (enum autocomp_codec)s, time_now_ns());
		pthread_mutex_unlock(&p->lock);
		if (!due)
			continue;
		if (!*in)
			*in = contiguous(w, b);
		if (compress_observed(w, (enum autocomp_codec)s, *in, b) == -ENOMEM)
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
	struct iovec iov[BATCH_PAGES + 2] = { { &fixed, sizeof(fixed) },
					      { (void *)b->entries, b->count * 8ull } };

	memcpy(iov + 2, b->iov, (size_t)b->niov * sizeof(*iov));
	return wire_send(w->chan, REC_PAGES, iov, b->niov + 2);
}

static int send_frame(struct worker *w, const struct batch *b, const uint8_t *in,
		      enum autocomp_codec c, long n)
{
	struct rec_zpages fixed = { .count = b->count,
				    .round = b->round,
				    .codec = c == AUTOCOMP_LZ4 ? ZPAGES_LZ4 : ZPAGES_ZSTD,
				    .payload_len = b->payload_len,
				    .payload_hash = XXH3_64bits(in, b->payload_len) };
	struct iovec iov[3] = { { &fixed, sizeof(fixed) },
				{ (void *)b->entries, b->count * 8ull },
				{ w->frame, (size_t)n } };
	struct pipeline *p = w->p;
	bool corrupt;

	pthread_mutex_lock(&p->lock);
	corrupt = ++p->compressed == p->faults.corrupt_batch;
	pthread_mutex_unlock(&p->lock);
	if (corrupt)
		w->frame[n / 2] ^= 0x5a;
	return wire_send(w->chan, REC_ZPAGES, iov, 3);
}

/* Count a batch that went out (n: its frame's length, or <= 0: raw). */
static void account(struct worker *w, const struct batch *b, enum autocomp_codec c, long n,
		    uint64_t sent0, uint64_t wait0)
{
	struct pipeline *p = w->p;

	pthread_mutex_lock(&p->lock);
	w->st.bytes = w->chan->bytes_sent;
	w->st.raw_bytes += b->payload_len;
	w->st.batches++;
	w->st.compressed += n > 0;
	w->st.skipped += c != AUTOCOMP_NONE && b->payload_len && n <= 0;
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
	enum autocomp_codec c = fixed_codec(&p->params.compress);
	uint64_t sent0 = w->chan->bytes_sent, wait0 = w->chan->write_wait_ns;
	const uint8_t *in = NULL;
	long n = -ENOSPC;
	int rc;

	if (w->index == 0 && p->faults.slow_ms && !on_main(p))
		time_sleep_ns((uint64_t)p->faults.slow_ms * NS_PER_MS);
	if (p->params.compress.automatic && b->payload_len)
		c = choose(w, b, &in);
	if (c != AUTOCOMP_NONE && b->payload_len) {
		if (!in)
			in = contiguous(w, b);
		n = compress_observed(w, c, in, b);
		if (n == -ENOMEM)
			return -ENOMEM;
	}
	rc = n > 0 ? send_frame(w, b, in, c, n) : send_raw(w, b);
	account(w, b, c, n, sent0, wait0);
	return rc;
}

/* The first failure stops the pipeline; its sentence is what the user reads. */
static void fail(struct pipeline *p, int rc)
{
	pthread_mutex_lock(&p->lock);
	if (!p->err) {
		p->err = rc;
		snprintf(p->why, sizeof(p->why), "%s", err_msg());
	}
	p->stop = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	pipeline_shutdown(p);
}

static void give_back(struct pipeline *p, struct batch *b)
{
	b->next = p->free;
	p->free = b;
	pthread_cond_broadcast(&p->changed);
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
		while (!p->todo && !p->stop)
			pthread_cond_wait(&p->changed, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		b = p->todo;
		p->todo = b->next;
		if (!p->todo)
			p->todo_tail = &p->todo;
		p->busy++;
		if (w->rate_bps != p->rate_bps / p->nworkers) {
			w->rate_bps = p->rate_bps / p->nworkers;
			ratelimit_set(&w->chan->rl, w->rate_bps);
		}
		pthread_mutex_unlock(&p->lock);
		rc = send_batch(w, b);
		pthread_mutex_lock(&p->lock);
		p->busy--;
		give_back(p, b);
		pthread_mutex_unlock(&p->lock);
		if (rc < 0) {
			err_wrap(rc, "data channel %u", w->index);
			fail(p, rc);
			return NULL;
		}
	}
}

int pipeline_batch(struct pipeline *p, struct batch **out)
{
	struct batch *b;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->free && !p->err)
		pthread_cond_wait(&p->changed, &p->lock);
	if (p->err) {
		rc = err_set(p->err, "%s", p->why);
	} else {
		b = p->free;
		p->free = b->next;
		b->count = 0;
		b->niov = 0;
		b->payload_len = 0;
		b->used = 0;
		*out = b;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
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
	if (p->err)
		rc = err_set(p->err, "%s", p->why);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int drain(struct pipeline *p)
{
	int rc;

	pthread_mutex_lock(&p->lock);
	while ((p->todo || p->busy) && !p->err)
		pthread_cond_wait(&p->changed, &p->lock);
	rc = p->err ? err_set(p->err, "%s", p->why) : 0;
	pthread_mutex_unlock(&p->lock);
	return rc;
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

uint64_t pipeline_bytes_sent(struct pipeline *p)
{
	uint64_t n = 0;

	if (on_main(p))
		return 0;
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < p->nworkers; i++)
		n += p->w[i].st.bytes;
	pthread_mutex_unlock(&p->lock);
	return n;
}

uint64_t pipeline_queued(struct pipeline *p)
{
	uint64_t n = 0;

	if (on_main(p))
		return 0;
	for (uint32_t i = 0; i < p->nworkers; i++)
		n += chan_queued(p->w[i].chan);
	return n;
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
	s->channels = p->params.channels;
	for (uint32_t i = 0; i < p->nworkers; i++)
		s->chan[i] = p->w[i].st;
	s->codec = p->ac;
	if (!p->params.compress.automatic)
		s->codec.plan = (struct autocomp_plan){ fixed_codec(&p->params.compress),
							fixed_codec(&p->params.compress), 0 };
	pthread_mutex_unlock(&p->lock);
}

void pipeline_shutdown(struct pipeline *p)
{
	for (uint32_t i = 0; p && p->w && !on_main(p) && i < p->nworkers; i++)
		chan_shutdown(&p->w[i].own);
}

/* A data channel: connect, then the stream header and JOIN. */
static int join(struct worker *w, const char *uri, const uint8_t *token, uint32_t timeout_ms)
{
	struct stream_header h;
	struct rec_join j = { .index = w->index };
	struct iovec hv = { &h, sizeof(h) }, jv = { &j, sizeof(j) };
	int rc = chan_connect(&w->own, uri);

	if (rc < 0)
		return err_wrap(rc, "data channel %u", w->index);
	w->own.timeout_ms = (int)timeout_ms;
	memcpy(j.token, token, CHANNEL_TOKEN_SIZE);
	stream_header_init(&h);
	rc = chan_writev(&w->own, &hv, 1);
	if (rc == 0)
		rc = wire_send(&w->own, REC_JOIN, &jv, 1);
	return rc < 0 ? err_wrap(rc, "data channel %u", w->index) : 0;
}

static int make_batches(struct pipeline *p, uint32_t n)
{
	p->batches = calloc(n, sizeof(*p->batches));
	if (!p->batches)
		return -ENOMEM;
	p->nbatches = n;
	for (uint32_t i = 0; i < n; i++) {
		p->batches[i].buf = malloc(BATCH_PAGES * STREAM_PAGE_SIZE);
		if (!p->batches[i].buf)
			return -ENOMEM;
		give_back(p, &p->batches[i]);
	}
	return 0;
}

static int make_workers(struct pipeline *p, struct chan *main)
{
	size_t bytes = BATCH_PAGES * STREAM_PAGE_SIZE;

	p->w = calloc(p->nworkers, sizeof(*p->w));
	if (!p->w)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		w->index = i;
		w->own.fd = -1;
		w->chan = p->params.channels ? &w->own : main;
		w->frame = malloc(compress_bound(bytes));
		w->gather = malloc(bytes);
		if (!w->frame || !w->gather)
			return -ENOMEM;
	}
	return 0;
}

static long env_number(const char *name)
{
	const char *v = getenv(name);

	return v ? strtol(v, NULL, 10) : 0;
}

int pipeline_open(const char *uri, struct chan *main, const struct mig_params *params,
		  const uint8_t *token, struct pipeline **out)
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
	p->faults = (struct faults){ env_number("FERRY_TEST_CORRUPT_BATCH"),
				     env_number("FERRY_TEST_SLOW_CHANNEL") };
	autocomp_init(&p->ac, p->nworkers < cpus ? p->nworkers : (unsigned)cpus, time_now_ns());
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
		rc = join(&p->w[i], uri, token, params->io_timeout_ms);
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
	pipeline_shutdown(p); /* a worker blocked on a full socket lets go now */
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 0; p->w && i < p->nworkers; i++) {
		struct worker *w = &p->w[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		chan_close(&w->own);
		for (int c = 0; c < AUTOCOMP_CODECS; c++)
			compressor_free(&w->codec[c]);
		free(w->frame);
		free(w->gather);
	}
	for (uint32_t i = 0; i < p->nbatches; i++)
		free(p->batches[i].buf);
	free(p->batches);
	free(p->w);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	free(p);
}
