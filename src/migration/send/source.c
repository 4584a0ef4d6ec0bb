#include "migration/send/source.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "migration/send/postcopy.h"
#include "migration/send/source_internal.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "transport/tls.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "vm/dirty.h"
#include "vm/guest_status.h"
#include "vm/state.h"
#include "vm/vm.h"

/* A round shorter than this waits out the rest before its sync, so that
 * rounds with little to send do not spin on dirty syncs. */
#define MIN_ROUND_NS (10 * NS_PER_MS)
/* Queued bytes not worth waiting for before the switchover (drain_queue). */
#define DRAIN_ENOUGH (64u << 10)
/* How long a failed source listens for the destination's reason. */
#define PEER_REASON_MS 500

void source_note_status(struct mig_source *m, enum mig_status s)
{
	m->stats.status = s;
	mig_trail_note(&m->trail, s);
}

void source_set_status(struct mig_source *m, enum mig_status s)
{
	pthread_mutex_lock(&m->lock);
	source_note_status(m, s);
	pthread_mutex_unlock(&m->lock);
}

uint32_t mig_source_trail(struct mig_source *m, uint32_t *seen, enum mig_status *out, uint32_t max)
{
	uint32_t n;

	pthread_mutex_lock(&m->lock);
	n = mig_trail_read(&m->trail, seen, out, max);
	pthread_mutex_unlock(&m->lock);
	return n;
}

static bool cancelled(struct mig_source *m)
{
	bool c;

	pthread_mutex_lock(&m->lock);
	c = m->cancelled;
	pthread_mutex_unlock(&m->lock);
	return c;
}

struct meter_sample source_sample(struct mig_source *m)
{
	struct pipeline_counters pc;
	struct meter_sample s = { .ns = time_now_ns() };

	pipeline_counters(m->pipe, &pc);
	s.bytes = m->sent_before + m->chan.bytes_sent + pc.bytes;
	s.queued = chan_queued(&m->chan) + pc.queued;
	s.pages = m->enc.counts.raw + m->enc.counts.zero + m->enc.counts.xbzrle;
	s.raw_bytes = pc.raw_bytes;
	s.wire_bytes = pc.wire_bytes;
	return s;
}

void source_progress(struct mig_source *m, uint64_t remaining)
{
	uint64_t bytes = source_sample(m).bytes;

	pthread_mutex_lock(&m->lock);
	m->stats.remaining_pages = remaining;
	m->stats.bytes_sent = bytes;
	m->stats.pages_raw = m->enc.counts.raw;
	m->stats.pages_zero = m->enc.counts.zero;
	m->stats.pages_xbzrle = m->enc.counts.xbzrle;
	m->stats.xbzrle = m->enc.xbzrle;
	ratelimit_set(&m->chan.rl, m->params.max_bandwidth_bps);
	pipeline_set_rate(m->pipe, m->params.max_bandwidth_bps);
	pipeline_stats(m->pipe, &m->stats);
	pthread_mutex_unlock(&m->lock);
}

struct mig_params source_params(struct mig_source *m)
{
	struct mig_params p;

	pthread_mutex_lock(&m->lock);
	p = m->params;
	pthread_mutex_unlock(&m->lock);
	return p;
}

/* During a round: cancelled, or out of time? */
static int check_deadline(struct mig_source *m, uint64_t remaining)
{
	struct mig_params p = source_params(m);
	struct meter_sample now;
	struct meter_reading live;

	if (cancelled(m))
		return err_set(-ECANCELED, "cancelled by request");
	if (m->paused)
		return 0;
	now = source_sample(m);
	meter_live(&m->meter, &now, &live);
	return policy_check_timeout(&live, &p, live.elapsed_s, remaining);
}

int source_send_batch(struct mig_source *m, const uint64_t *gfns, uint32_t n, uint32_t round)
{
	struct batch *b;
	int rc = pipeline_batch(m->pipe, &b);

	if (rc < 0)
		return rc;
	encoder_fill(&m->enc, b, &m->vm->mem, gfns, n, round, m->paused);
	return pipeline_submit(m->pipe, b);
}

/* Send every page set in m->dirty, then ROUND records; clears the bitmap.
 * Cut short for post-copy (round 0, postcopy_early): the pages not sent
 * stay, with the ones dirtied meanwhile. */
static int send_round(struct mig_source *m, uint32_t round, uint64_t count)
{
	uint64_t gfns[BATCH_PAGES], sent = 0, t0 = time_now_ns(), cut = 0;
	struct rec_round marker = { .round = round };
	struct iovec body = { &marker, sizeof(marker) };
	uint32_t n = 0;
	int rc = 0;

	for (uint64_t g = bitmap_next(m->dirty, m->npages, 0); g < m->npages && rc == 0;
	     g = bitmap_next(m->dirty, m->npages, g + 1)) {
		gfns[n++] = g;
		if (n < BATCH_PAGES)
			continue;
		rc = source_send_batch(m, gfns, n, round);
		sent += n;
		n = 0;
		if (rc == 0)
			rc = check_deadline(m, count > sent ? count - sent : 0);
		source_progress(m, count > sent ? count - sent : 0);
		if (rc == 0 && round == 0 && postcopy_early(m, t0)) {
			cut = g + 1;
			break;
		}
	}
	if (rc == 0 && n)
		rc = source_send_batch(m, gfns, n, round);
	if (cut) {
		bitmap_clear_below(m->dirty, cut);
		bitmap_or_take(m->dirty, m->carry, m->npages);
	} else {
		memset(m->dirty, 0, BITMAP_WORDS(m->npages) * 8);
	}
	marker.pages = sent + n;
	if (rc == 0)
		rc = pipeline_end_round(m->pipe, round);
	if (rc == 0)
		rc = wire_send(&m->chan, REC_ROUND, &body, 1);
	source_progress(m, 0);
	return rc;
}

static bool postcopy_asked(struct mig_source *m)
{
	bool asked;

	pthread_mutex_lock(&m->lock);
	asked = m->postcopy_asked;
	pthread_mutex_unlock(&m->lock);
	return asked;
}

void source_count_round(struct mig_source *m, struct round_record rec)
{
	if (m->stats.rounds < MIG_ROUND_LOG)
		m->stats.round_log[m->stats.rounds] = rec;
	m->stats.rounds++;
}

/* After a round: measure, decide, slow the guest if need be. Returns 1 to
 * switch over (to post-copy if m->to_postcopy), 0 to go on, or -errno
 * (with the reason) to give up. */
static int after_round(struct mig_source *m, uint32_t round)
{
	struct meter_sample end = source_sample(m);
	const struct meter_reading *r = &m->meter.r;
	struct mig_params p = source_params(m);
	struct converge_outlook outlook;
	enum policy_decision d;
	char why[400];
	int rc = meter_round_end(&m->meter, &end, m->dirty);

	if (rc == 0 && m->looked && round == 0)
		meter_carry(&m->meter, m->dirty, m->carry);

	if (rc == 0 && policy_wants_probe(r, &p))
		rc = meter_probe(&m->meter, m->dirty);
	if (rc < 0)
		return rc;
	converge_outlook(&m->conv, &p, &outlook);
	d = policy_decide(&m->policy, r, &p, &outlook, why, sizeof(why));
	pthread_mutex_lock(&m->lock);
	source_count_round(m, (struct round_record){
				      .pages = end.pages - m->meter.round_start.pages,
				      .dirtied = r->dirty_pages,
				      .ms = r->round_s * 1e3,
				      .throttle_pct = m->conv.stats.throttle_pct_now,
			      });
	m->stats.bandwidth_bps = r->bandwidth_bps;
	m->stats.dirty_rate_pps = r->dirty_rate_pps;
	m->stats.remaining_pages = r->dirty_pages;
	m->stats.expected_downtime_ms = policy_expected_downtime_ms(r);
	pthread_mutex_unlock(&m->lock);
	log_info(
		"migration: round %u sent %llu pages in %.0f ms (%.0f MiB/s); %llu dirty; expect %.1f ms downtime",
		round, (unsigned long long)(end.pages - m->meter.round_start.pages),
		r->round_s * 1e3, r->bandwidth_bps / (1 << 20), (unsigned long long)r->dirty_pages,
		policy_expected_downtime_ms(r));
	if (d == POLICY_SWITCHOVER)
		return 1;
	if (postcopy_asked(m)) {
		log_info("migration: switching to post-copy, as asked");
		m->to_postcopy = true;
		return 1;
	}
	if (d == POLICY_GIVE_UP)
		return err_set(-ETIMEDOUT, "%s", why);
	rc = converge_after_round(&m->conv, &p, r, round);
	pthread_mutex_lock(&m->lock);
	m->stats.converge = m->conv.stats;
	pthread_mutex_unlock(&m->lock);
	m->to_postcopy = rc == CONVERGE_POSTCOPY;
	return rc;
}

/* Bytes sent but still in the kernel (a shaped link's queue, the congestion
 * window) would sit in front of the last pages: let them drain while the
 * guest still runs, if it dirties slower than they drain. Bounded by twice
 * the time the measured bandwidth says it takes. */
static void drain_queue(struct mig_source *m)
{
	const struct meter_reading *r = &m->meter.r;
	uint64_t queued = source_sample(m).queued, deadline;

	if (queued < DRAIN_ENOUGH || r->bandwidth_bps <= 0 ||
	    meter_dirty_bps(r) >= CONVERGE_TARGET * r->bandwidth_bps)
		return;
	deadline = time_now_ns() + (uint64_t)(2e9 * (double)queued / r->bandwidth_bps) +
		   10 * NS_PER_MS;
	while (source_sample(m).queued > DRAIN_ENOUGH && time_now_ns() < deadline)
		if (cancel_sleep_ns(&m->cancel, NS_PER_MS))
			return;
}

/* Rounds until the policy says switch over (the next round's number) or
 * give up (-errno). */
static int precopy(struct mig_source *m)
{
	uint64_t count = m->npages;

	for (uint32_t round = 0;; round++) {
		uint64_t t0 = time_now_ns();
		int rc;
		struct meter_sample start = source_sample(m);

		meter_round_start(&m->meter, &start);
		rc = send_round(m, round, count);
		if (rc == 0 && m->to_postcopy) /* cut short: post-copy now */
			return (int)round + 1;
		if (rc == 0 && time_now_ns() - t0 < MIN_ROUND_NS)
			cancel_sleep_ns(&m->cancel, MIN_ROUND_NS - (time_now_ns() - t0));
		if (rc == 0)
			rc = after_round(m, round);
		if (rc > 0) {
			drain_queue(m);
			return (int)round + 1;
		}
		if (rc == 0)
			rc = check_deadline(m, m->meter.r.dirty_pages);
		if (rc < 0)
			return rc;
		count = m->meter.r.dirty_pages;
	}
}

int source_pause(struct mig_source *m, double *pause_ms, uint64_t *t)
{
	int rc;

	source_set_status(m, MIG_SWITCHOVER);
	converge_stop(&m->conv); /* paused anyway; the guest resumes at full speed */
	rc = vm_pause(m->vm);
	if (rc < 0)
		return err_set(rc, "the guest stopped during the migration");
	m->paused = true;
	*pause_ms = ms_since(t);
	return 0;
}

static int send_state(struct mig_source *m)
{
	uint8_t *blob;
	size_t len;
	int rc = state_save(m->vm, &blob, &len);
	struct iovec body;

	if (rc < 0)
		return rc;
	body = (struct iovec){ blob, len };
	rc = wire_send(&m->chan, REC_STATE, &body, 1);
	free(blob);
	return rc;
}

/* HASHES of every page (--verify), the guest paused. */
static int send_hashes(struct mig_source *m)
{
	uint64_t *hash = malloc(HASHES_MAX_COUNT * sizeof(*hash));
	int rc = 0;

	if (!hash)
		return err_set(-ENOMEM, "out of memory for page hashes");
	for (uint64_t first = 0; first < m->npages && rc == 0; first += HASHES_MAX_COUNT) {
		uint32_t n = (uint32_t)(m->npages - first < HASHES_MAX_COUNT ? m->npages - first
									     : HASHES_MAX_COUNT);
		struct rec_hashes fixed = { .first_gfn = first, .count = n };
		struct iovec body[2] = { { &fixed, sizeof(fixed) }, { hash, n * 8ull } };

		for (uint32_t i = 0; i < n; i++)
			hash[i] = hash64(mem_host(&m->vm->mem, (first + i) * FERRY_PAGE_SIZE,
						  FERRY_PAGE_SIZE),
					 FERRY_PAGE_SIZE);
		rc = wire_send(&m->chan, REC_HASHES, body, 2);
	}
	free(hash);
	return rc;
}

int source_send_machine(struct mig_source *m, struct mig_phases *ph, uint64_t *t)
{
	int rc = send_state(m);

	ph->state = ms_since(t);
	if (rc == 0 && m->params.verify)
		rc = send_hashes(m);
	ph->verify = ms_since(t);
	return rc;
}

int source_commit(struct mig_source *m)
{
	bool go;

	pthread_mutex_lock(&m->lock);
	go = !m->cancelled;
	m->committed = go;
	pthread_mutex_unlock(&m->lock);
	if (!go)
		return err_set(-ECANCELED, "cancelled by request");
	return wire_send_empty(&m->chan, REC_COMMIT);
}

/* Paused: the last round's pages (how many into *pages), and the end of
 * the pipeline. */
static int final_pages(struct mig_source *m, uint32_t round, struct mig_phases *ph, uint64_t *t,
		       uint64_t *pages)
{
	int64_t n = dirty_sync(m->vm->dirty, m->dirty);
	int rc;

	if (n < 0)
		return (int)n;
	ph->final_sync = ms_since(t);
	*pages = (uint64_t)n;
	rc = send_round(m, round, (uint64_t)n);
	if (rc == 0)
		rc = pipeline_end(m->pipe);
	ph->final_pages = ms_since(t);
	return rc;
}

/* Paused: the last pages (none in a local migration), the state, the
 * hashes, END; LOADED; COMMIT; RESUMED. The parts of the downtime go to
 * the report. */
static int switchover(struct mig_source *m, uint32_t round)
{
	struct rec_received_chan received[CHANNELS_MAX] = { 0 };
	struct mig_phases ph = { 0 };
	uint64_t pages = 0;
	bool refused = false;
	uint64_t t_pause = time_now_ns(), t = t_pause;
	int rc = source_pause(m, &ph.pause, &t);

	if (rc == 0 && !m->params.local)
		rc = final_pages(m, round, &ph, &t, &pages);
	if (rc == 0)
		rc = source_send_machine(m, &ph, &t);
	if (rc == 0)
		rc = wire_send_empty(&m->chan, REC_END);
	if (rc == 0)
		rc = handshake_expect(&m->chan, REC_LOADED, received, NULL);
	ph.handoff = ms_since(&t);
	if (rc == 0)
		rc = source_commit(m);
	if (rc == 0)
		rc = handshake_expect(&m->chan, REC_RESUMED, NULL, &refused);
	/* A destination answers COMMIT with ERROR only if it did not start the
	 * guest (a stop or a fence won): the guest can only run here. */
	if (refused) {
		pthread_mutex_lock(&m->lock);
		m->committed = false;
		pthread_mutex_unlock(&m->lock);
	}
	ph.resume = ms_since(&t);
	pthread_mutex_lock(&m->lock);
	memcpy(m->stats.received, received, sizeof(received));
	m->stats.phase = ph;
	m->stats.downtime_ms = (double)(time_now_ns() - t_pause) / 1e6;
	if (!m->params.local) /* the last round, if pages went */
		source_count_round(m,
				   (struct round_record){ .pages = pages, .ms = ph.final_pages });
	m->stats.verify = m->params.verify ? (rc == 0 ? "ok" : m->stats.verify) : "off";
	if (m->params.local)
		m->stats.bytes_sent = m->chan.bytes_sent;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Local: the memory goes over as its fd (MEMFD). Nothing is tracked or
 * sent: the destination maps the very pages the guest writes. */
static int offer_memory(struct mig_source *m)
{
	struct rec_memfd r = { .mem_bytes = m->vm->mem.size, .backend = m->vm->mem.backend };
	int fd, rc = mem_share(&m->vm->mem, &fd);

	return rc < 0 ? rc : wire_send_fd(&m->chan, REC_MEMFD, &r, sizeof(r), fd);
}

/* Track dirty pages from now on; the first sync reports every page, for
 * round 0. */
static int start_tracking(struct mig_source *m, const struct mig_params *p)
{
	int64_t n;
	int rc;

	pipeline_watch(m->pipe, &m->chan);
	if (p->verify)
		meter_time_verify(&m->meter, &m->vm->mem);
	rc = dirty_start(m->vm->dirty);
	if (rc < 0)
		return rc;
	n = dirty_sync(m->vm->dirty, m->dirty);
	return n < 0 ? (int)n : 0;
}

/* Connect, open, join the data channels (or hand the memory over), wait
 * for READY, start tracking. */
static int setup(struct mig_source *m)
{
	struct mig_params p = source_params(m);
	uint64_t t0 = time_now_ns();
	char what[512];
	int rc = chan_connect(&m->chan, m->uri, (int)p.io_timeout_ms, &m->cancel);

	if (rc == 0)
		rc = chan_start_tls(&m->chan, m->tls, NULL);
	if (rc == 0 && m->chan.tls)
		log_info("TLS: %s", tls_session_describe(m->chan.tls, what, sizeof(what)));
	if (rc == 0) {
		ratelimit_init(&m->chan.rl, p.max_bandwidth_bps);
		rc = handshake_send(&m->chan, &m->hello);
	}
	if (rc == 0 && p.local)
		rc = offer_memory(m);
	else if (rc == 0)
		rc = pipeline_open(m->uri, &m->chan, &p, m->hello.channels.token, &m->cancel,
				   m->tls, &m->pipe);
	if (rc == 0)
		rc = handshake_expect_ready(&m->chan);
	if (rc < 0)
		return rc;
	/* From now on the destination only speaks to refuse: a write that
	 * waits on any channel ends when it does (say it stopped reading). */
	m->chan.speaker = &m->chan;
	guest_stalls_reset(m->vm); /* the destination reports the longest since */
	if (!p.local && (rc = start_tracking(m, &p)) < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->stats.setup_ms = time_ms_since(t0);
	source_note_status(m, MIG_ACTIVE);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* The outcome. Before COMMIT the source guest runs on, memory intact;
 * after COMMIT without an answer it stays paused (unknown). */
static enum mig_status outcome(struct mig_source *m, int rc)
{
	if (rc == 0)
		return MIG_COMPLETED;
	if (m->lost)
		return MIG_LOST;
	if (m->committed)
		return MIG_UNKNOWN;
	/* Our own cancel, not a peer's code: a cancel makes blocked I/O fail,
	 * and a destination may refuse with any code. */
	return cancelled(m) ? MIG_CANCELLED : MIG_FAILED;
}

/* Settle the outcome and let go of everything the migration held. */
static void finish(struct mig_source *m, int rc, const char *why)
{
	enum mig_status s = outcome(m, rc);
	struct mig_stats st;

	double total_ms = time_ms_since(m->start_ns); /* not the clean-up after */

	converge_stop(&m->conv);
	dirty_stop(m->vm->dirty);
	if ((s == MIG_FAILED || s == MIG_CANCELLED) && m->paused)
		vm_resume(m->vm);
	if (s == MIG_COMPLETED && m->params.local)
		mem_hand_over(&m->vm->mem); /* the destination's now: leave the pages be */
	else if (s == MIG_COMPLETED)
		mem_release(&m->vm->mem); /* the guest lives on the destination now */
	if (m->pipe)
		source_progress(m, 0);
	pipeline_close(m->pipe);
	m->pipe = NULL;
	chan_close(&m->chan);
	chan_close(&m->urgent);
	encoder_free(&m->enc);
	meter_free(&m->meter);
	pthread_mutex_lock(&m->lock);
	source_note_status(m, s);
	m->stats.total_ms = total_ms;
	m->stats.converge.throttle_pct_now = 0;
	if (s == MIG_LOST)
		snprintf(
			m->stats.reason, sizeof(m->stats.reason),
			"post-copy broke after the guest started on the destination (%s): its memory is split between the two sides, so neither can run it; it stays paused here",
			why);
	else if (s == MIG_UNKNOWN)
		snprintf(
			m->stats.reason, sizeof(m->stats.reason),
			"COMMIT was sent but the destination did not confirm (%s): the guest may be running there, so it stays paused here; ferry migrate-resolve asks the destination and settles it",
			why);
	else if (s == MIG_CANCELLED)
		snprintf(m->stats.reason, sizeof(m->stats.reason), "cancelled by request");
	else if (rc < 0)
		snprintf(m->stats.reason, sizeof(m->stats.reason), "%s", why);
	st = m->stats; /* settle() may change it once unlocked */
	pthread_mutex_unlock(&m->lock);
	if (s == MIG_COMPLETED)
		log_info("migration to %s completed in %.0f ms, downtime %.1f ms", m->uri,
			 st.total_ms, st.downtime_ms);
	else
		log_err("migration to %s %s: %s", m->uri, mig_status_name(s), st.reason);
}

/* A destination that fails says why on the main channel before it hangs
 * up, while the sender may only have seen a broken data channel: prefer its
 * sentence. Returns rc. */
static int peer_reason(struct mig_source *m, int rc)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	char ours[512];
	bool told = false;

	if (rc == -ETIMEDOUT || m->committed || cancelled(m) || m->chan.fd < 0)
		return rc;
	snprintf(ours, sizeof(ours), "%s", err_msg());
	m->chan.timeout_ms = PEER_REASON_MS;
	while (!told && wire_recv(&m->chan, &hdr, &buf) == 0)
		told = hdr.type == REC_ERROR && handshake_refusal(&buf, hdr.length) < 0;
	wire_buf_free(&buf);
	if (told)
		return rc;		/* with the destination's sentence */
	return err_set(rc, "%s", ours); /* reading set a sentence of its own */
}

static void *source_thread(void *arg)
{
	struct mig_source *m = arg;
	int rc;

	pthread_setname_np(pthread_self(), "migrate");
	err_clear();
	rc = setup(m);
	if (rc < 0 && !cancelled(m))
		err_wrap(peer_reason(m, rc), "setup");
	if (rc == 0 && m->params.local) {
		rc = 1; /* straight to the switchover: no page goes */
	} else if (rc == 0) {
		rc = precopy(m);
		if (rc < 0 && !cancelled(m))
			err_wrap(peer_reason(m, rc), "round %u", m->meter.rounds);
	}
	if (rc > 0 && m->to_postcopy) {
		rc = postcopy_switch(m, (uint32_t)rc);
		if (rc < 0)
			err_wrap(peer_reason(m, rc), "post-copy");
	} else if (rc > 0) {
		rc = switchover(m, (uint32_t)rc);
		if (rc < 0)
			err_wrap(peer_reason(m, rc), "switchover");
	}
	finish(m, rc, rc < 0 ? err_msg() : "");
	return NULL;
}

static void free_source(struct mig_source *m)
{
	tls_creds_free(m->tls);
	cancel_destroy(&m->cancel);
	pthread_cond_destroy(&m->resume_asked);
	pthread_mutex_destroy(&m->lock);
	free(m->dirty);
	free(m->carry);
	free(m);
}

/* What the opening tells the destination, with a fresh id and token. */
static int make_hello(struct mig_source *m)
{
	struct handshake *h = &m->hello;

	h->config = (struct rec_config){
		.mem_bytes = m->vm->mem.size,
		.vcpus = m->vm->nr_vcpus,
		.page_size = FERRY_PAGE_SIZE,
		.tsc_khz = m->vm->tsc_khz,
		.flags = (m->params.verify ? CONFIG_VERIFY : 0) |
			 (m->params.channels || m->params.postcopy ? CONFIG_CHANNELS : 0) |
			 (m->params.postcopy ? CONFIG_POSTCOPY : 0) |
			 (m->params.local ? CONFIG_LOCAL : 0)
	};
	h->channels.count = m->params.channels;
	if (getrandom(&h->id, sizeof(h->id), 0) != sizeof(h->id) ||
	    getrandom(h->channels.token, sizeof(h->channels.token), 0) != sizeof(h->channels.token))
		return err_set(-EIO, "no random bytes for the migration's id and token");
	h->id |= 1; /* never 0 */
	return 0;
}

static int init_source(struct mig_source *m, struct vm *vm, const char *uri,
		       const struct mig_params *p)
{
	bool compressing = p->compress.automatic || p->compress.kind != COMPRESS_NONE;
	int rc;

	m->vm = vm;
	m->params = *p;
	m->npages = vm->mem.size / FERRY_PAGE_SIZE;
	m->chan.fd = -1;
	m->urgent.fd = -1;
	m->cancel.fd = -1;
	m->start_ns = time_now_ns();
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	m->stats = (struct mig_stats){ .status = MIG_SETUP,
				       .verify = p->verify ? "pending" : "off",
				       .compress = p->compress,
				       .channels = p->channels,
				       .local = p->local };
	snprintf(m->stats.uri, sizeof(m->stats.uri), "%s", uri);
	mig_trail_note(&m->trail, MIG_SETUP);
	pthread_mutex_init(&m->lock, NULL);
	time_cond_init(&m->resume_asked);
	m->dirty = calloc(BITMAP_WORDS(m->npages), 8);
	if (p->postcopy && p->converge == CONVERGE_AUTO)
		m->carry = calloc(BITMAP_WORDS(m->npages), 8);
	if (!m->dirty || (p->postcopy && p->converge == CONVERGE_AUTO && !m->carry))
		return err_set(-ENOMEM, "out of memory");
	rc = make_hello(m);
	if (rc == 0)
		rc = cancel_init(&m->cancel);
	if (rc == 0)
		rc = meter_init(&m->meter, vm->dirty, m->npages, vm->nr_vcpus, compressing,
				m->start_ns);
	if (rc == 0)
		rc = encoder_init(&m->enc, p->xbzrle_cache_bytes, m->npages, !compressing);
	if (rc == 0)
		rc = converge_start(&m->conv, vm, p);
	if (rc == 0 && p->tls_creds[0])
		rc = tls_creds_load(
			&(struct tls_config){ .dir = p->tls_creds, .hostname = p->tls_hostname },
			TLS_CLIENT, &m->tls);
	m->stats.id = m->hello.id;
	m->stats.converge = m->conv.stats;
	return rc;
}

int mig_source_start(struct vm *vm, const char *uri, const struct mig_params *p,
		     struct mig_source **out)
{
	struct mig_source *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return err_set(-ENOMEM, "out of memory");
	rc = init_source(m, vm, uri, p);
	if (rc == 0) {
		rc = pthread_create(&m->thread, NULL, source_thread, m);
		if (rc)
			rc = err_set(-rc, "cannot start the migration thread: %s", strerror(rc));
	}
	if (rc < 0) {
		encoder_free(&m->enc);
		meter_free(&m->meter);
		free_source(m);
		return rc;
	}
	*out = m;
	return 0;
}

void mig_source_cancel(struct mig_source *m)
{
	pthread_mutex_lock(&m->lock);
	m->cancelled = true;
	/* Once COMMIT is out, cancelling cannot take the guest back; but it
	 * gives up a broken post-copy (send/recover.h). */
	if (!m->committed || m->stats.status == MIG_POSTCOPY_PAUSED ||
	    m->stats.status == MIG_POSTCOPY_RECOVER)
		cancel_fire(&m->cancel);
	pthread_cond_broadcast(&m->resume_asked);
	pthread_mutex_unlock(&m->lock);
}

int mig_source_resume(struct mig_source *m, const char *uri)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->stats.status != MIG_POSTCOPY_PAUSED) {
		rc = err_set(-EINVAL,
			     "the migration is %s: only a post-copy paused on a broken "
			     "link resumes",
			     mig_status_name(m->stats.status));
	} else {
		snprintf(m->resume_uri, sizeof(m->resume_uri), "%s", uri);
		m->resume_asked_ns = time_now_ns();
		source_note_status(m, MIG_POSTCOPY_RECOVER);
		pthread_cond_broadcast(&m->resume_asked);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int mig_source_start_postcopy(struct mig_source *m)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (!m->params.postcopy)
		rc = err_set(-EINVAL, "this migration did not allow post-copy (migrate with "
				      "--postcopy, or \"postcopy\": true)");
	else if (m->stats.status != MIG_SETUP && m->stats.status != MIG_ACTIVE)
		rc = err_set(-EINVAL, "the migration is %s: too late to switch to post-copy",
			     mig_status_name(m->stats.status));
	else
		m->postcopy_asked = true;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void mig_source_set_params(struct mig_source *m, const struct mig_params *p)
{
	pthread_mutex_lock(&m->lock);
	m->params.downtime_ms = p->downtime_ms;
	m->params.max_bandwidth_bps = p->max_bandwidth_bps;
	m->params.timeout_s = p->timeout_s;
	pthread_mutex_unlock(&m->lock);
}

struct mig_stats mig_source_stats(struct mig_source *m)
{
	struct mig_stats s;

	pthread_mutex_lock(&m->lock);
	s = m->stats;
	if (!mig_status_final(s.status))
		s.total_ms = time_ms_since(m->start_ns);
	pthread_mutex_unlock(&m->lock);
	return s;
}

void mig_source_settle(struct mig_source *m, const char *why)
{
	pthread_mutex_lock(&m->lock);
	if (m->stats.status == MIG_UNKNOWN) {
		source_note_status(m, MIG_FAILED);
		snprintf(m->stats.reason, sizeof(m->stats.reason), "%s", why);
	}
	pthread_mutex_unlock(&m->lock);
}

void mig_source_free(struct mig_source *m)
{
	if (!m)
		return;
	pthread_join(m->thread, NULL);
	free_source(m);
}
