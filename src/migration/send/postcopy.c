#include "migration/send/postcopy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "migration/send/recover.h"
#include "migration/send/requests.h"
#include "migration/send/source_internal.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "vm/dirty.h"
#include "vm/vm.h"

/* How far into round 0 the early look comes. */
#define EARLY_LOOK_NS (500 * NS_PER_MS)

bool postcopy_early(struct mig_source *m, uint64_t t0)
{
	struct mig_params p = source_params(m);
	struct meter_sample now;
	struct meter_reading live;
	double secs;
	int64_t n;

	if (!m->carry || m->looked || time_now_ns() - t0 < EARLY_LOOK_NS)
		return false;
	m->looked = true;
	now = source_sample(m);
	meter_live(&m->meter, &now, &live);
	n = dirty_sync(m->vm->dirty, m->carry);
	secs = (double)(now.ns - t0) / 1e9;
	m->to_postcopy =
		n > 0 && converge_early_postcopy(&m->conv, &p, (double)n * FERRY_PAGE_SIZE / secs,
						 live.bandwidth_bps, secs);
	pthread_mutex_lock(&m->lock);
	m->stats.converge = m->conv.stats;
	pthread_mutex_unlock(&m->lock);
	return m->to_postcopy;
}

/* The next pending page from at on, wrapping round once; npages if none. */
static uint64_t next_pending(struct mig_source *m, uint64_t at)
{
	uint64_t g = bitmap_next_atomic(m->dirty, m->npages, at);

	return g < m->npages || !at ? g : bitmap_next_atomic(m->dirty, m->npages, 0);
}

/* The push's batch in the making. */
struct push {
	struct requests *rq; /* its failure stops the push */
	uint64_t gfns[BATCH_PAGES];
	uint32_t n, round;
	uint64_t left; /* for the progress */
};

/* Page g, unless the urgent channel took it: into the batch, and the batch
 * out when full. */
static int push_page(struct mig_source *m, struct push *p, uint64_t g)
{
	int rc;

	if (!bitmap_test_and_clear_atomic(m->dirty, g))
		return 0;
	p->gfns[p->n++] = g;
	if (p->n < BATCH_PAGES)
		return 0;
	rc = requests_error(p->rq);
	if (rc == 0)
		rc = source_send_batch(m, p->gfns, p->n, p->round);
	p->left = p->left > p->n ? p->left - p->n : 0;
	p->n = 0;
	source_progress(m, p->left);
	return rc;
}

/* Every page still to come that the urgent channel did not take first:
 * the hot ones first (dirtied last before the pause: what the guest
 * touches first there), then the rest, going on after the last page asked
 * for (requests.h); then wait for PLACED, and END every channel. */
static int push_pending(struct mig_source *m, struct requests *rq, const uint64_t *hot,
			uint32_t round, uint64_t count)
{
	struct push p = { .rq = rq, .round = round, .left = count };
	uint64_t at = 0, hint = 0;
	int rc = 0;

	for (uint64_t g = hot ? bitmap_next(hot, m->npages, 0) : m->npages;
	     g < m->npages && rc == 0; g = bitmap_next(hot, m->npages, g + 1))
		rc = push_page(m, &p, g);
	for (uint64_t g = next_pending(m, at); g < m->npages && rc == 0; g = next_pending(m, at)) {
		at = g + 1;
		rc = push_page(m, &p, g);
		if (requests_hint(rq) != hint)
			at = hint = requests_hint(rq);
	}
	if (rc == 0 && p.n)
		rc = source_send_batch(m, p.gfns, p.n, round);
	source_progress(m, 0);
	if (rc == 0)
		rc = requests_wait_placed(rq, (int)m->params.io_timeout_ms);
	if (rc == 0)
		rc = pipeline_end(m->pipe);
	if (rc == 0)
		rc = wire_send_empty(&m->urgent, REC_END);
	return rc == 0 ? wire_send_empty(&m->chan, REC_END) : rc;
}

/* One link's part of post-copy, the guest running there: push the pages
 * still to come (m->dirty; hot ones first, if hot), answer the ones asked
 * for, until PLACED; END. 0, or -errno with the reason. */
static int serve(struct mig_source *m, const uint64_t *hot, uint32_t round, uint64_t pending)
{
	struct requests *rq = NULL;
	struct requests_stats st = { 0 };
	int rc;

	m->chan.speaker = NULL;
	pipeline_watch(m->pipe, NULL);
	rc = requests_start(&(struct requests_source){ .mem = &m->vm->mem,
						       .pending = m->dirty,
						       .round = round,
						       .main = &m->chan,
						       .urgent = &m->urgent },
			    &rq);
	if (rc == 0)
		rc = push_pending(m, rq, hot, round, pending);
	if (rq)
		st = requests_stats(rq);
	requests_stop(rq);
	m->told |= st.told;
	pthread_mutex_lock(&m->lock);
	/* Refused before RESUMED: it did not start the guest, which can only run here. */
	if (st.told && !st.resumed_ns && !m->there)
		m->committed = false;
	m->there |= st.resumed_ns != 0;
	m->stats.postcopy.requests += st.records;
	m->stats.postcopy.requested_pages += st.pages;
	if (rc == 0)
		m->stats.postcopy.placed = st.placed;
	if (st.resumed_ns)
		m->stats.downtime_ms = (double)(st.resumed_ns - m->pause_ns) / 1e6;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* After COMMIT: the guest runs there, and its pages still here follow,
 * through as many broken links as migrate --resume mends
 * (send/recover.h). The destination asks for the pages its vCPUs wait
 * for on the main channel, so a write on it no longer means a refusal. */
static int run_postcopy(struct mig_source *m, const uint64_t *hot, uint32_t round, uint64_t pending)
{
	uint64_t t0 = time_now_ns();
	int rc;

	encoder_forget(&m->enc);
	pthread_mutex_lock(&m->lock);
	source_note_status(m, MIG_POSTCOPY);
	m->stats.postcopy.used = true;
	m->stats.postcopy.pending = pending;
	pthread_mutex_unlock(&m->lock);
	rc = serve(m, hot, round, pending);
	while (rc < 0 && postcopy_recoverable(m, rc)) {
		rc = postcopy_relink(m, round);
		if (rc == 0)
			rc = serve(m, NULL, round, bitmap_count(m->dirty, m->npages));
	}
	m->lost = rc < 0 && m->there;
	pthread_mutex_lock(&m->lock);
	m->stats.postcopy.ms = time_ms_since(t0);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* FORGET: the pages still to send now will be still to come at the switch
 * (nothing more goes before it); the destination forgets them while the
 * guest runs here, rather than in the switch's pause. */
static int forget_ahead(struct mig_source *m, uint32_t round)
{
	uint64_t t0 = time_now_ns();
	int rc = wire_send_pending(&m->chan, REC_FORGET, m->dirty, m->npages, round);

	if (rc == 0)
		rc = handshake_expect(&m->chan, REC_FORGOTTEN, NULL, NULL);
	pthread_mutex_lock(&m->lock);
	m->stats.postcopy.forget_ms = time_ms_since(t0);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Pause the guest; the pages it dirtied last go into hot, and with the
 * rest still to come. */
static int pause_and_sync(struct mig_source *m, uint64_t *hot, struct mig_phases *ph, uint64_t *t)
{
	int64_t n;
	int rc = source_pause(m, &ph->pause, t);

	if (rc < 0)
		return rc;
	n = dirty_sync(m->vm->dirty, hot);
	if (n < 0)
		return (int)n;
	bitmap_or(m->dirty, hot, m->npages);
	ph->final_sync = ms_since(t);
	return 0;
}

/* FORGET ahead; then paused: the state, the hashes, which pages are still
 * to come; LOADED; COMMIT; then those pages (run_postcopy). */
int postcopy_switch(struct mig_source *m, uint32_t round)
{
	struct rec_received_chan received[CHANNELS_MAX] = { 0 };
	struct mig_phases ph = { 0 };
	uint64_t t = time_now_ns(), n;
	uint64_t *hot = calloc(BITMAP_WORDS(m->npages), 8);
	int rc = hot ? 0 : err_set(-ENOMEM, "out of memory for post-copy");

	if (rc == 0)
		rc = forget_ahead(m, round);
	m->pause_ns = t = time_now_ns();
	if (rc == 0)
		rc = pause_and_sync(m, hot, &ph, &t);
	if (rc < 0) {
		free(hot);
		return rc;
	}
	n = bitmap_count(m->dirty, m->npages);
	rc = source_send_machine(m, &ph, &t);
	if (rc == 0)
		rc = handshake_join(&m->urgent, m->uri, CHANNEL_URGENT, m->hello.channels.token,
				    (int)m->params.io_timeout_ms, &m->cancel, m->tls);
	if (rc == 0)
		rc = wire_send_pending(&m->chan, REC_POSTCOPY, m->dirty, m->npages, round);
	if (rc == 0)
		rc = handshake_expect(&m->chan, REC_LOADED, received, NULL);
	ph.handoff = ms_since(&t);
	if (rc == 0)
		rc = source_commit(m);
	pthread_mutex_lock(&m->lock);
	memcpy(m->stats.received, received, sizeof(received));
	m->stats.phase = ph;
	source_count_round(m, (struct round_record){ .pages = n }); /* pushed in post-copy */
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = run_postcopy(m, hot, round, n);
	free(hot);
	pthread_mutex_lock(&m->lock);
	m->stats.verify = m->params.verify ? (rc == 0 ? "ok" : m->stats.verify) : "off";
	pthread_mutex_unlock(&m->lock);
	return rc;
}
