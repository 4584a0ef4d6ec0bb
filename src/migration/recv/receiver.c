#include "migration/recv/receiver.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/failure.h"
#include "migration/handshake.h"
#include "migration/recv/apply.h"
#include "migration/recv/round_gate.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"

struct receiver {
	struct receivers *set;
	uint32_t index;
	struct chan chan;
	struct page_writer w;
	struct wire_buf buf;
	uint32_t round;		    /* the round being received */
	uint64_t round_start_pages; /* pages before it */
	uint64_t barrier_waits;
	pthread_t thread;
	bool joined, started;
};

struct receivers {
	uint32_t count;
	struct receiver *ch;
	struct round_gate gate;
	struct chan *main;
	struct failure failed;	  /* the first failure */
	struct postcopy *take_up; /* receivers_take_up's, for receivers_start */
	uint32_t take_up_round;
	const struct tls_creds *tls; /* each channel's, as the main one's */
	const char *peer;
};

/* The first failure stops every channel and wakes the main thread. */
static void fail(struct receivers *r, int rc)
{
	failure_set(&r->failed, rc);
	round_gate_abort(&r->gate);
	for (uint32_t i = 0; i < r->count; i++)
		chan_shutdown(&r->ch[i].chan);
	if (r->main)
		chan_shutdown_read(r->main);
}

/* One record of a data channel, its header read; 1 at END. */
static int take(struct receiver *c, const struct rec_header *hdr)
{
	struct rec_round marker;
	int rc;

	if (hdr->type == REC_PAGES || hdr->type == REC_LPAGES || hdr->type == REC_ZPAGES)
		return page_writer_recv(&c->w, &c->chan, hdr, &c->buf, c->round);
	rc = wire_recv_body(&c->chan, hdr, &c->buf);
	if (rc < 0)
		return rc;
	switch (hdr->type) {
	case REC_ROUND:
		rc = rec_parse_round(c->buf.data, hdr->length, &marker);
		if (rc == 0 && marker.pages != c->w.pages - c->round_start_pages)
			rc = err_set(-EPROTO, "round %u announced %llu pages, %llu arrived",
				     marker.round, (unsigned long long)marker.pages,
				     (unsigned long long)(c->w.pages - c->round_start_pages));
		if (rc == 0)
			rc = round_gate_pass(&c->set->gate, marker.round);
		if (rc < 0)
			return rc;
		c->barrier_waits += rc == 1;
		c->round++;
		c->round_start_pages = c->w.pages;
		return 0;
	case REC_END:
		return 1;
	}
	return err_set(-EPROTO, "unexpected %s record on a data channel", rec_type_name(hdr->type));
}

static void *receiver_thread(void *arg)
{
	struct receiver *c = arg;
	struct rec_header hdr;
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "in-chan%u", c->index);
	pthread_setname_np(pthread_self(), name);
	do {
		rc = wire_recv_header(&c->chan, &hdr, &c->buf);
		if (rc == 0)
			rc = take(c, &hdr);
	} while (rc == 0);
	if (rc < 0 && rc != -ECANCELED)
		fail(c->set, err_wrap(rc, "data channel %u", c->index));
	return NULL;
}

/* Accept one connection and read its JOIN: its index, or -ETIMEDOUT,
 * -ECANCELED, or another -errno for a stranger (logged, closed). */
static int accept_one(struct receivers *r, int lfd, const char *uri, const struct rec_channels *ch,
		      int wait_ms, int timeout_ms, const struct cancel *cancel)
{
	bool joined[CHANNELS_MAX];
	struct chan c;
	int rc = chan_accept(&c, lfd, uri, wait_ms, cancel);

	if (rc < 0)
		return rc;
	c.timeout_ms = timeout_ms;
	for (uint32_t i = 0; i < r->count; i++)
		joined[i] = r->ch[i].joined;
	rc = chan_start_tls(&c, r->tls, r->peer);
	if (rc == 0)
		rc = handshake_check_join(&c, ch, joined);
	if (rc < 0) {
		log_warn("refused a data channel: %s", err_msg());
		chan_close(&c);
		return -EACCES;
	}
	r->ch[rc].chan = c;
	r->ch[rc].joined = true;
	return rc;
}

int receivers_accept(int lfd, const char *uri, const struct rec_channels *ch, int timeout_ms,
		     const struct cancel *cancel, const struct tls_creds *tls, const char *peer,
		     struct receivers **out)
{
	struct receivers *r = calloc(1, sizeof(*r));
	uint64_t deadline = time_now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	uint32_t joined = 0;

	*out = r;
	if (!r)
		return err_set(-ENOMEM, "out of memory for data channels");
	r->ch = calloc(ch->count, sizeof(*r->ch));
	if (!r->ch)
		return err_set(-ENOMEM, "out of memory for data channels");
	r->count = ch->count;
	r->tls = tls;
	r->peer = peer;
	failure_init(&r->failed);
	round_gate_init(&r->gate, r->count);
	for (uint32_t i = 0; i < r->count; i++)
		r->ch[i].chan.fd = -1;
	while (joined < r->count) {
		uint64_t now = time_now_ns();
		int rc;

		if (now >= deadline)
			return err_set(-ETIMEDOUT, "only %u of %u data channels joined in %.1f s",
				       joined, r->count, timeout_ms / 1000.0);
		rc = accept_one(r, lfd, uri, ch, (int)((deadline - now) / NS_PER_MS) + 1,
				timeout_ms, cancel);
		if (rc == -ECANCELED)
			return rc;
		joined += rc >= 0;
	}
	return 0;
}

int receivers_start(struct receivers *r, const struct guest_mem *mem, uint64_t *written,
		    uint64_t *damaged, uint32_t *waiting, struct chan *main)
{
	r->main = main;
	for (uint32_t i = 0; i < r->count; i++) {
		struct receiver *c = &r->ch[i];
		int rc = page_writer_init(&c->w, mem, written, damaged);

		c->w.place = r->take_up;
		c->round = r->take_up_round;
		c->set = r;
		c->index = i;
		c->chan.waiting = waiting;
		c->chan.company = main->company;
		if (rc < 0)
			return rc;
		rc = pthread_create(&c->thread, NULL, receiver_thread, c);
		if (rc)
			return err_set(-rc, "cannot start a channel thread: %s", strerror(rc));
		c->started = true;
	}
	return 0;
}

int receivers_error(struct receivers *r)
{
	return failure_get(&r->failed);
}

int receivers_finish(struct receivers *r)
{
	for (uint32_t i = 0; i < r->count; i++)
		if (r->ch[i].started) {
			pthread_join(r->ch[i].thread, NULL);
			r->ch[i].started = false;
		}
	return receivers_error(r);
}

uint64_t receivers_pages(struct receivers *r)
{
	uint64_t n = 0;

	for (uint32_t i = 0; r && i < r->count; i++)
		n += __atomic_load_n(&r->ch[i].w.pages, __ATOMIC_RELAXED);
	return n;
}

uint64_t receivers_damaged_copies(struct receivers *r)
{
	uint64_t n = 0;

	for (uint32_t i = 0; r && i < r->count; i++)
		n += __atomic_load_n(&r->ch[i].w.damaged_copies, __ATOMIC_RELAXED);
	return n;
}

uint32_t receivers_rounds(struct receivers *r)
{
	return round_gate_rounds(&r->gate);
}

int receivers_wait_rounds(struct receivers *r, uint32_t rounds, int timeout_ms)
{
	int rc = round_gate_wait(&r->gate, rounds, timeout_ms);

	return rc == -ECANCELED ? receivers_error(r) : rc;
}

void receivers_take_up(struct receivers *r, struct postcopy *pc, uint32_t round)
{
	r->take_up = pc;
	r->take_up_round = round;
}

void receivers_place(struct receivers *r, struct postcopy *pc)
{
	for (uint32_t i = 0; i < r->count; i++)
		__atomic_store_n(&r->ch[i].w.place, pc, __ATOMIC_RELEASE);
}

uint32_t receivers_count(const struct receivers *r)
{
	return r ? r->count : 0;
}

void receivers_account(struct receivers *r, struct rec_received_chan *out)
{
	for (uint32_t i = 0; i < r->count; i++)
		out[i] = (struct rec_received_chan){
			.bytes = r->ch[i].chan.bytes_received,
			.batches = r->ch[i].w.batches,
			.decompress_ns = r->ch[i].w.decompress_ns,
			.barrier_waits = r->ch[i].barrier_waits,
		};
}

void receivers_free(struct receivers *r)
{
	if (!r)
		return;
	if (r->ch) {
		round_gate_abort(&r->gate);
		for (uint32_t i = 0; i < r->count; i++)
			chan_shutdown(&r->ch[i].chan);
		receivers_finish(r);
		for (uint32_t i = 0; i < r->count; i++) {
			page_writer_free(&r->ch[i].w);
			wire_buf_free(&r->ch[i].buf);
			chan_close(&r->ch[i].chan);
		}
		round_gate_destroy(&r->gate);
		failure_destroy(&r->failed);
	}
	free(r->ch);
	free(r);
}
