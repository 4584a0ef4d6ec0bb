#include "migration/source.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "migration/converge.h"
#include "migration/encode.h"
#include "migration/pipeline.h"
#include "migration/policy.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/state.h"
#include "vm/vm.h"

/* Until a round has moved this much, for this long, its throughput says little. */
#define MIN_BYTES_FOR_BANDWIDTH (1u << 20)
#define MIN_SECS_FOR_BANDWIDTH	0.1
/* Restore and two one-way trips on top of what can be measured. */
#define HANDOFF_ESTIMATE_MS 2.0
/* The state blob is about 11 KiB per vCPU here; round up for other hosts. */
#define STATE_BYTES_PER_VCPU 16384.0
/* A round shorter than this waits out the rest before its sync, so that
 * rounds with little to send do not spin on dirty syncs. */
#define MIN_ROUND_NS (10 * NS_PER_MS)
/* Queued bytes not worth waiting for before the switchover (drain_queue). */
#define DRAIN_ENOUGH (64u << 10)
/* The dirty-rate probe's window (see probe_dirty_rate). */
#define PROBE_NS (20 * NS_PER_MS)
/* How long a failed source listens for the destination's reason. */
#define PEER_REASON_MS 500

struct mig_source {
	struct vm *vm;
	char uri[256];
	struct chan chan; /* the main channel */
	struct pipeline *pipe;
	uint8_t token[CHANNEL_TOKEN_SIZE]; /* data channels present it */
	pthread_t thread;
	uint64_t *dirty; /* pages to send this round */
	uint64_t *probe; /* pages the dirty-rate probe saw */
	struct encoder enc;
	struct converge conv;
	uint64_t npages;
	uint64_t start_ns;
	uint64_t sync_start_ns; /* when the last round's dirty sync began */
	bool paused;		/* we paused the guest (switchover) */
	bool committed;		/* COMMIT went out: never resume here on our own */
	double verify_ms;	/* predicted cost of hashing every page, both sides */

	pthread_mutex_t lock; /* protects everything below */
	struct mig_params params;
	struct mig_stats stats;
	bool cancel;
};

static void set_status(struct mig_source *m, enum mig_status s)
{
	pthread_mutex_lock(&m->lock);
	m->stats.status = s;
	pthread_mutex_unlock(&m->lock);
}

static bool cancelled(struct mig_source *m)
{
	bool c;

	pthread_mutex_lock(&m->lock);
	c = m->cancel;
	pthread_mutex_unlock(&m->lock);
	return c;
}

static int send_handshake(struct mig_source *m)
{
	struct stream_header h;
	struct rec_config cfg = {
		.mem_bytes = m->vm->mem.size,
		.vcpus = m->vm->nr_vcpus,
		.page_size = STREAM_PAGE_SIZE,
		.tsc_khz = m->vm->tsc_khz,
		.flags = (m->params.verify ? CONFIG_VERIFY : 0) |
			 (m->params.channels ? CONFIG_CHANNELS : 0),
	};
	struct rec_channels ch = { .count = m->params.channels };
	struct iovec iov = { &h, sizeof(h) }, body = { &cfg, sizeof(cfg) },
		     chv = { &ch, sizeof(ch) };
	int rc;

	memcpy(ch.token, m->token, sizeof(ch.token));
	stream_header_init(&h);
	rc = chan_writev(&m->chan, &iov, 1);
	if (rc == 0)
		rc = wire_send(&m->chan, REC_CONFIG, &body, 1);
	if (rc == 0 && m->params.channels)
		rc = wire_send(&m->chan, REC_CHANNELS, &chv, 1);
	return rc;
}

/* Bytes written to every channel, and bytes of those still queued. */
static uint64_t bytes_sent(struct mig_source *m)
{
	return m->chan.bytes_sent + (m->pipe ? pipeline_bytes_sent(m->pipe) : 0);
}

static uint64_t bytes_queued(struct mig_source *m)
{
	return chan_queued(&m->chan) + (m->pipe ? pipeline_queued(m->pipe) : 0);
}

/* Where a page of the batch is read from. While the guest runs, a page can
 * change under the send, and the record's checksum must match what goes on
 * the wire: copy it into the batch first. Paused, guest memory is still:
 * send it in place. */
static const uint8_t *batch_page(struct mig_source *m, struct batch *b, uint64_t gfn)
{
	uint8_t *page = mem_host(&m->vm->mem, gfn * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE);

	if (m->paused)
		return page;
	memcpy(b->buf + b->used, page, STREAM_PAGE_SIZE);
	return b->buf + b->used;
}

/* Add a page's payload to the batch. A delta is copied into the batch (the
 * encoder reuses its buffer), over the page copy it was made from. */
static void add_payload(struct mig_source *m, struct batch *b, const uint8_t *page, struct iovec p)
{
	if (p.iov_base != page) {
		memcpy(b->buf + b->used, p.iov_base, p.iov_len);
		p.iov_base = b->buf + b->used;
		b->used += (uint32_t)p.iov_len;
	} else if (!m->paused) {
		b->used += (uint32_t)p.iov_len;
	}
	b->payload_len += (uint32_t)p.iov_len;
	/* Neighbouring payloads in memory go as one iovec. */
	if (b->niov &&
	    (uint8_t *)b->iov[b->niov - 1].iov_base + b->iov[b->niov - 1].iov_len == p.iov_base)
		b->iov[b->niov - 1].iov_len += p.iov_len;
	else
		b->iov[b->niov++] = p;
}

/* One batch of up to BATCH_PAGES pages, each encoded as zero, raw or
 * XBZRLE (migration/encode.h), into the pipeline. */
static int send_batch(struct mig_source *m, const uint64_t *gfns, uint32_t n, uint32_t round)
{
	uint64_t raw = 0, zero = 0;
	struct batch *b;
	int rc = pipeline_batch(m->pipe, &b);

	if (rc < 0)
		return rc;
	b->round = round;
	b->count = n;
	encoder_begin_batch(&m->enc);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *page = batch_page(m, b, gfns[i]);
		struct iovec p;

		b->entries[i] = encoder_page(&m->enc, gfns[i], page, round, &p);
		raw += PAGE_ENTRY_ENC(b->entries[i]) == PAGE_RAW;
		zero += PAGE_ENTRY_ENC(b->entries[i]) == PAGE_ZERO;
		if (p.iov_len)
			add_payload(m, b, page, p);
	}
	pthread_mutex_lock(&m->lock);
	m->stats.pages_raw += raw;
	m->stats.pages_zero += zero;
	m->stats.pages_xbzrle += n - raw - zero;
	m->stats.xbzrle = m->enc.stats;
	pthread_mutex_unlock(&m->lock);
	return pipeline_submit(m->pipe, b);
}

static int check_deadline(struct mig_source *m)
{
	struct mig_stats st;
	uint64_t timeout_s;

	pthread_mutex_lock(&m->lock);
	timeout_s = m->params.timeout_s;
	st = m->stats;
	pthread_mutex_unlock(&m->lock);
	if (cancelled(m))
		return err_set(-ECANCELED, "cancelled by request");
	if (timeout_s && !m->paused && time_now_ns() - m->start_ns > timeout_s * NS_PER_S)
		return err_set(
			-ETIMEDOUT,
			"did not converge in %llu s: the guest dirties %.0f MiB/s, the link carries %.0f MiB/s, and %llu pages were still to send",
			(unsigned long long)timeout_s, st.dirty_rate_pps * 4096 / (1 << 20),
			st.bandwidth_bps / (1 << 20), (unsigned long long)st.remaining_pages);
	return 0;
}

static void update_progress(struct mig_source *m, uint64_t remaining)
{
	pthread_mutex_lock(&m->lock);
	m->stats.remaining_pages = remaining;
	m->stats.bytes_sent = bytes_sent(m);
	ratelimit_set(&m->chan.rl, m->params.max_bandwidth_bps);
	pipeline_set_rate(m->pipe, m->params.max_bandwidth_bps);
	pipeline_stats(m->pipe, &m->stats);
	pthread_mutex_unlock(&m->lock);
}

/* Send every page set in m->dirty, then a ROUND record; clears the bitmap. */
static int send_round(struct mig_source *m, uint32_t round, uint64_t count)
{
	uint64_t gfns[BATCH_PAGES], sent = 0;
	struct rec_round marker = { .round = round };
	struct iovec body = { &marker, sizeof(marker) };
	uint32_t n = 0;
	int rc = 0;

	for (uint64_t g = bitmap_next(m->dirty, m->npages, 0); g < m->npages && rc == 0;
	     g = bitmap_next(m->dirty, m->npages, g + 1)) {
		gfns[n++] = g;
		if (n < BATCH_PAGES)
			continue;
		rc = send_batch(m, gfns, n, round);
		sent += n;
		n = 0;
		if (rc == 0)
			rc = check_deadline(m);
		update_progress(m, count > sent ? count - sent : 0);
	}
	if (rc == 0 && n)
		rc = send_batch(m, gfns, n, round);
	memset(m->dirty, 0, BITMAP_WORDS(m->npages) * 8);
	marker.pages = sent + n;
	if (rc == 0)
		rc = pipeline_end_round(m->pipe, round);
	if (rc == 0)
		rc = wire_send(&m->chan, REC_ROUND, &body, 1);
	update_progress(m, 0);
	return rc;
}

/* A round's dirty count saturates at the working set when the guest dirties
 * it all within the round, hiding how fast it really dirties. A second sync
 * PROBE_NS later measures the rate over a window too short to saturate; its
 * pages join the next round's. */
static int probe_dirty_rate(struct mig_source *m, struct policy_input *in)
{
	uint64_t t0 = m->sync_start_ns; /* pages written during that sync count here */
	int64_t n;
	double rate;

	time_sleep_ns(PROBE_NS);
	n = dirty_sync(m->vm->dirty, m->probe);
	if (n < 0)
		return (int)n;
	rate = (double)n * 1e9 / (double)(time_now_ns() - t0);
	if (rate > in->dirty_rate_pps)
		in->dirty_rate_pps = rate;
	bitmap_or_take(m->dirty, m->probe, m->npages);
	in->dirty_pages = bitmap_count(m->dirty, m->npages);
	return 0;
}

/* Where a round starts or ends: time, bytes written to the socket, bytes
 * that have left it, pages sent. */
struct round_mark {
	uint64_t ns, bytes, gone, pages;
};

static struct round_mark mark_round(struct mig_source *m)
{
	struct round_mark r = { .ns = time_now_ns(), .bytes = bytes_sent(m) };
	uint64_t queued = bytes_queued(m);

	r.gone = r.bytes > queued ? r.bytes - queued : 0;
	pthread_mutex_lock(&m->lock);
	r.pages = m->stats.pages_raw + m->stats.pages_zero + m->stats.pages_xbzrle;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* What a written page costs on the wire, by the channels' ratio so far. */
static double compressed_page_bytes(struct mig_source *m)
{
	uint64_t wire = 0, raw = 0;

	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < (m->stats.channels ? m->stats.channels : 1); i++) {
		wire += m->stats.chan[i].bytes;
		raw += m->stats.chan[i].raw_bytes;
	}
	pthread_mutex_unlock(&m->lock);
	return raw ? 8 + STREAM_PAGE_SIZE * (double)wire / (double)raw : STREAM_PAGE_SIZE + 8;
}

/* After a round: measure, predict, decide. Returns 1 to switch over, 0 to
 * go on, or -errno (with the reason) to give up. */
static int after_round(struct mig_source *m, const struct round_mark *start,
		       struct policy_input *in)
{
	struct round_mark end = mark_round(m);
	double secs = (double)(end.ns - start->ns) / 1e9;
	uint64_t bytes = end.bytes - start->bytes, pages = end.pages - start->pages;
	struct dirty_stats ds;
	char why[400];
	int64_t n;
	int rc;

	/* The link's rate is what left the socket, not what went into it: a
	 * round that fills an empty socket buffer would look faster. A short
	 * small round says little (a shaper's burst after an idle moment), but
	 * is better than no measurement at all. */
	if (bytes >= MIN_BYTES_FOR_BANDWIDTH && end.gone > start->gone &&
	    (secs >= MIN_SECS_FOR_BANDWIDTH || bytes >= 16 * MIN_BYTES_FOR_BANDWIDTH ||
	     in->bandwidth_bps <= 0))
		in->bandwidth_bps = (double)(end.gone - start->gone) / secs;
	/* Round 0 averages in every zero page of the guest; the pages that get
	 * dirtied again are written ones. Learn the cost from later rounds;
	 * in round 0, from what compression made of the written ones. */
	if (pages && m->stats.rounds > 0)
		in->bytes_per_page = (double)bytes / (double)pages;
	else if (m->params.compress.automatic || m->params.compress.kind != COMPRESS_NONE)
		in->bytes_per_page = compressed_page_bytes(m);
	m->sync_start_ns = time_now_ns();
	n = dirty_sync(m->vm->dirty, m->dirty);
	if (n < 0)
		return (int)n;
	ds = dirty_get_stats(m->vm->dirty);
	in->dirty_pages = (uint64_t)n;
	in->queued_bytes = bytes_queued(m);
	in->dirty_rate_pps = secs > 0 ? (double)n / secs : 0;
	if (converge_wants_probe(in)) {
		rc = probe_dirty_rate(m, in);
		if (rc < 0)
			return rc;
	}
	in->switchover_ms = (double)ds.last_sync_ns / 1e6 + HANDOFF_ESTIMATE_MS + m->verify_ms +
			    (in->bandwidth_bps > 0 ? STATE_BYTES_PER_VCPU * m->vm->nr_vcpus /
							     in->bandwidth_bps * 1e3
						   : 0);
	in->elapsed_s = (double)(time_now_ns() - m->start_ns) / 1e9;
	in->round_s = secs;

	pthread_mutex_lock(&m->lock);
	m->stats.rounds++;
	m->stats.bandwidth_bps = in->bandwidth_bps;
	m->stats.dirty_rate_pps = in->dirty_rate_pps;
	m->stats.remaining_pages = (uint64_t)n;
	m->stats.expected_downtime_ms = policy_expected_downtime_ms(in);
	enum policy_decision d = policy_decide(in, &m->params, why, sizeof(why));
	pthread_mutex_unlock(&m->lock);
	log_info(
		"migration: round %u sent %llu pages in %.0f ms (%.0f MiB/s); %lld dirty; expect %.1f ms downtime",
		m->stats.rounds, (unsigned long long)pages, secs * 1e3,
		in->bandwidth_bps / (1 << 20), (long long)n, m->stats.expected_downtime_ms);
	if (d == POLICY_GIVE_UP)
		return err_set(-ETIMEDOUT, "%s", why);
	if (d == POLICY_SWITCHOVER)
		return 1;
	rc = converge_after_round(&m->conv, &m->params, in, m->stats.rounds - 1);
	pthread_mutex_lock(&m->lock);
	m->stats.converge = m->conv.stats;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Bytes sent but still in the kernel (a shaped link's queue, the congestion
 * window) would sit in front of the last pages: let them drain while the
 * guest still runs, if it dirties slower than they drain. Bounded by twice
 * the time the measured bandwidth says it takes. */
static void drain_queue(struct mig_source *m, const struct policy_input *in)
{
	uint64_t queued = bytes_queued(m), deadline;

	if (queued < DRAIN_ENOUGH || in->bandwidth_bps <= 0 ||
	    in->dirty_rate_pps * in->bytes_per_page >= CONVERGE_TARGET * in->bandwidth_bps)
		return;
	deadline = time_now_ns() + (uint64_t)(2e9 * (double)queued / in->bandwidth_bps) +
		   10 * NS_PER_MS;
	while (bytes_queued(m) > DRAIN_ENOUGH && time_now_ns() < deadline && !cancelled(m))
		time_sleep_ns(NS_PER_MS);
}

static int precopy(struct mig_source *m)
{
	struct policy_input in = { .bytes_per_page = STREAM_PAGE_SIZE + 8 };
	uint64_t count = m->npages;
	int rc;

	for (uint32_t round = 0;; round++) {
		struct round_mark start = mark_round(m);

		rc = send_round(m, round, count);
		if (rc < 0)
			return rc;
		if (time_now_ns() - start.ns < MIN_ROUND_NS)
			time_sleep_ns(MIN_ROUND_NS - (time_now_ns() - start.ns));
		rc = after_round(m, &start, &in);
		if (rc > 0)
			drain_queue(m, &in);
		if (rc != 0)
			return rc < 0 ? rc : (int)round + 1;
		count = in.dirty_pages;
		rc = check_deadline(m);
		if (rc < 0)
			return rc;
	}
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
			hash[i] = XXH3_64bits(mem_host(&m->vm->mem, (first + i) * STREAM_PAGE_SIZE,
						       STREAM_PAGE_SIZE),
					      STREAM_PAGE_SIZE);
		rc = wire_send(&m->chan, REC_HASHES, body, 2);
	}
	free(hash);
	return rc;
}

/* The destination's account of each channel, for the report. */
static int take_received(struct mig_source *m, const struct wire_buf *buf, uint32_t len)
{
	uint32_t n;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = rec_parse_received(buf->data, len, &n, m->stats.received);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* An ERROR record: its reason, as the error. */
static int refused(const struct wire_buf *buf, uint32_t len)
{
	char text[ERROR_MAX_TEXT + 1];
	uint32_t code;
	int rc = rec_parse_error(buf->data, len, &code, text);

	return rc < 0 ? rc : err_set(-(int)(code ? code : EPROTO), "destination refused: %s", text);
}

/* Wait for the destination's answer: want, or ERROR with its reason. */
static int expect_reply(struct mig_source *m, uint32_t want)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	int rc = wire_recv(&m->chan, &hdr, &buf);

	if (rc == 0 && hdr.type == REC_RECEIVED) {
		rc = take_received(m, &buf, hdr.length);
		if (rc == 0)
			rc = wire_recv(&m->chan, &hdr, &buf);
	}
	if (rc == 0 && hdr.type == REC_ERROR) {
		rc = refused(&buf, hdr.length);
	} else if (rc == 0 && hdr.type != want) {
		rc = err_set(-EPROTO, "destination answered %s where %s was due",
			     rec_type_name(hdr.type), rec_type_name(want));
	} else if (rc < 0) {
		rc = err_wrap(rc, "no %s from the destination", rec_type_name(want));
	}
	wire_buf_free(&buf);
	return rc;
}

static double ms_since(uint64_t *t)
{
	uint64_t now = time_now_ns();
	double ms = (double)(now - *t) / 1e6;

	*t = now;
	return ms;
}

static int switchover(struct mig_source *m, uint32_t round)
{
	struct mig_phases ph = { 0 };
	uint64_t t_pause = time_now_ns(), t = t_pause;
	int64_t n;
	int rc;

	set_status(m, MIG_SWITCHOVER);
	converge_stop(&m->conv); /* paused anyway; the guest resumes at full speed */
	rc = vm_pause(m->vm);
	if (rc < 0)
		return err_set(rc, "the guest stopped during the migration");
	m->paused = true;
	ph.pause = ms_since(&t);
	n = dirty_sync(m->vm->dirty, m->dirty);
	if (n < 0)
		return (int)n;
	ph.final_sync = ms_since(&t);
	rc = send_round(m, round, (uint64_t)n);
	if (rc == 0)
		rc = pipeline_end(m->pipe);
	ph.final_pages = ms_since(&t);
	if (rc == 0)
		rc = send_state(m);
	ph.state = ms_since(&t);
	if (rc == 0 && m->params.verify)
		rc = send_hashes(m);
	ph.verify = ms_since(&t);
	if (rc == 0)
		rc = wire_send_empty(&m->chan, REC_END);
	if (rc == 0)
		rc = expect_reply(m, REC_LOADED);
	ph.handoff = ms_since(&t);
	if (rc == 0) {
		/* Past this point the destination may run the guest. */
		pthread_mutex_lock(&m->lock);
		m->committed = true;
		pthread_mutex_unlock(&m->lock);
		rc = wire_send_empty(&m->chan, REC_COMMIT);
		if (rc == 0)
			rc = expect_reply(m, REC_RESUMED);
	}
	ph.resume = ms_since(&t);
	pthread_mutex_lock(&m->lock);
	m->stats.phase = ph;
	m->stats.downtime_ms = (double)(time_now_ns() - t_pause) / 1e6;
	m->stats.rounds++;
	m->stats.verify = m->params.verify ? (rc == 0 ? "ok" : m->stats.verify) : "off";
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Hashing all of memory happens twice during downtime with verify (source,
 * then destination): time a sample now to predict it. The fastest of three
 * timings: one that was descheduled would promise a switchover that never
 * fits the limit. */
static double predict_verify_ms(struct mig_source *m)
{
	uint64_t n = m->npages < 1024 ? m->npages : 1024, best = UINT64_MAX, sum = 0;

	for (int k = 0; k < 3; k++) {
		uint64_t t0 = time_now_ns();

		for (uint64_t g = 0; g < n; g++)
			sum += XXH3_64bits(
				mem_host(&m->vm->mem, g * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE),
				STREAM_PAGE_SIZE);
		t0 = time_now_ns() - t0;
		best = t0 < best ? t0 : best;
	}
	(void)sum;
	return 2.0 * (double)best / 1e6 * (double)m->npages / (double)n;
}

static int open_pipeline(struct mig_source *m)
{
	struct pipeline *p = NULL;
	int rc = pipeline_open(m->uri, &m->chan, &m->params, m->token, &p);

	pthread_mutex_lock(&m->lock);
	m->pipe = p; /* from now on a cancel shuts its channels too */
	if (m->cancel)
		pipeline_shutdown(p);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int setup(struct mig_source *m)
{
	uint64_t t0 = time_now_ns();
	int64_t n;
	int rc = converge_start(&m->conv, m->vm, &m->params);

	m->stats.converge = m->conv.stats;
	if (rc == 0)
		rc = encoder_init(&m->enc, m->params.xbzrle_cache_bytes, m->npages, BATCH_PAGES);
	if (rc == 0)
		rc = chan_connect(&m->chan, m->uri);
	if (rc < 0)
		return rc;
	m->chan.timeout_ms = (int)m->params.io_timeout_ms;
	ratelimit_init(&m->chan.rl, m->params.max_bandwidth_bps);
	if (getrandom(m->token, sizeof(m->token), 0) != sizeof(m->token))
		return err_set(-EIO, "no random bytes for the channel token");
	rc = send_handshake(m);
	if (rc == 0)
		rc = open_pipeline(m);
	if (rc < 0)
		return rc;
	rc = expect_reply(m, REC_READY);
	if (rc < 0)
		return rc;
	if (m->params.verify)
		m->verify_ms = predict_verify_ms(m);
	rc = dirty_start(m->vm->dirty);
	if (rc < 0)
		return rc;
	n = dirty_sync(m->vm->dirty,
		       m->dirty); /* the first sync reports every page: round 0 sends all */
	if (n < 0)
		return (int)n;
	pthread_mutex_lock(&m->lock);
	m->stats.setup_ms = time_ms_since(t0);
	m->stats.status = MIG_ACTIVE;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Settle the outcome. Before COMMIT the source guest must run on with its
 * memory intact; after COMMIT without an answer it must stay paused. */
static void finish(struct mig_source *m, int rc, const char *why)
{
	enum mig_status s;

	if (rc == 0)
		s = MIG_COMPLETED;
	else if (m->committed)
		s = MIG_UNKNOWN;
	else if (rc == -ECANCELED || cancelled(m)) {
		/* Cancelling shuts the socket down: the error may be that. */
		s = MIG_CANCELLED;
		why = "cancelled by request";
	} else
		s = MIG_FAILED;
	converge_stop(&m->conv);
	dirty_stop(m->vm->dirty);
	if ((s == MIG_FAILED || s == MIG_CANCELLED) && m->paused)
		vm_resume(m->vm);
	if (s == MIG_COMPLETED)
		mem_release(&m->vm->mem); /* the guest lives on the destination now */
	pthread_mutex_lock(&m->lock);
	m->stats.bytes_sent = bytes_sent(m);
	if (m->pipe)
		pipeline_stats(m->pipe, &m->stats);
	pthread_mutex_unlock(&m->lock);
	chan_close(&m->chan);
	pipeline_close(m->pipe);
	encoder_free(&m->enc);
	pthread_mutex_lock(&m->lock);
	m->pipe = NULL;
	m->stats.status = s;
	m->stats.total_ms = time_ms_since(m->start_ns);
	m->stats.converge.throttle_pct_now = 0;
	if (s == MIG_UNKNOWN)
		snprintf(
			m->stats.reason, sizeof(m->stats.reason),
			"COMMIT was sent but the destination did not confirm (%s): the guest may be running there, so it stays paused here; resume it here (cont) only if you know it is not",
			why);
	else if (rc < 0)
		snprintf(m->stats.reason, sizeof(m->stats.reason), "%s", why);
	pthread_mutex_unlock(&m->lock);
	if (s == MIG_COMPLETED)
		log_info("migration to %s completed in %.0f ms, downtime %.1f ms", m->uri,
			 m->stats.total_ms, m->stats.downtime_ms);
	else
		log_err("migration to %s %s: %s", m->uri, mig_status_name(s), m->stats.reason);
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

	if (rc == -ETIMEDOUT || rc == -ECANCELED || m->committed || cancelled(m))
		return rc;
	snprintf(ours, sizeof(ours), "%s", err_msg());
	m->chan.timeout_ms = PEER_REASON_MS;
	while (!told && wire_recv(&m->chan, &hdr, &buf) == 0)
		told = hdr.type == REC_ERROR && refused(&buf, hdr.length) < 0;
	wire_buf_free(&buf);
	if (told)
		return rc;		/* with the destination's sentence, set by refused() */
	return err_set(rc, "%s", ours); /* reading set a sentence of its own */
}

static void *source_thread(void *arg)
{
	struct mig_source *m = arg;
	int rc;

	pthread_setname_np(pthread_self(), "migrate");
	err_clear();
	rc = setup(m);
	if (rc < 0 && rc != -ECANCELED)
		err_wrap(rc, "setup");
	if (rc == 0)
		rc = precopy(m);
	if (rc < 0)
		rc = peer_reason(m, rc);
	if (rc < 0 && rc != -ECANCELED && m->stats.status == MIG_ACTIVE)
		err_wrap(rc, "round %u", m->stats.rounds);
	if (rc > 0) {
		rc = switchover(m, (uint32_t)rc);
		if (rc < 0)
			err_wrap(peer_reason(m, rc), "switchover");
	}
	finish(m, rc, rc < 0 ? err_msg() : "");
	return NULL;
}

static void free_buffers(struct mig_source *m)
{
	free(m->dirty);
	free(m->probe);
	free(m);
}

int mig_source_start(struct vm *vm, const char *uri, const struct mig_params *p,
		     struct mig_source **out)
{
	struct mig_source *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return err_set(-ENOMEM, "out of memory");
	m->vm = vm;
	m->params = *p;
	m->npages = vm->mem.size / STREAM_PAGE_SIZE;
	m->dirty = calloc(BITMAP_WORDS(m->npages), 8);
	m->probe = calloc(BITMAP_WORDS(m->npages), 8);
	m->chan.fd = -1;
	m->start_ns = time_now_ns();
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	snprintf(m->stats.uri, sizeof(m->stats.uri), "%s", uri);
	m->stats.status = MIG_SETUP;
	m->stats.verify = p->verify ? "pending" : "off";
	m->stats.compress = p->compress;
	m->stats.channels = p->channels;
	pthread_mutex_init(&m->lock, NULL);
	if (!m->dirty || !m->probe) {
		free_buffers(m);
		return err_set(-ENOMEM, "out of memory");
	}
	rc = pthread_create(&m->thread, NULL, source_thread, m);
	if (rc) {
		free_buffers(m);
		return err_set(-rc, "cannot start the migration thread: %s", strerror(rc));
	}
	*out = m;
	return 0;
}

void mig_source_cancel(struct mig_source *m)
{
	pthread_mutex_lock(&m->lock);
	m->cancel = true;
	/* Once COMMIT is out, cancelling cannot take the guest back. */
	if (!m->committed) {
		chan_shutdown(&m->chan);
		pipeline_shutdown(m->pipe);
	}
	pthread_mutex_unlock(&m->lock);
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

void mig_source_free(struct mig_source *m)
{
	if (!m)
		return;
	pthread_join(m->thread, NULL);
	pthread_mutex_destroy(&m->lock);
	free_buffers(m);
}
