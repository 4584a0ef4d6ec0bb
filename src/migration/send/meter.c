#include "migration/send/meter.h"

#include <errno.h>
#include <stdlib.h>

#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/memory.h"

/* Until a round has moved this much, for this long, its throughput says little. */
#define MIN_BYTES_FOR_BANDWIDTH (1u << 20)
#define MIN_SECS_FOR_BANDWIDTH	0.1
/* Restore and two one-way trips on top of what can be measured. */
#define HANDOFF_ESTIMATE_MS 2.0
/* The state blob is about 11 KiB per vCPU here; round up for other hosts. */
#define STATE_BYTES_PER_VCPU 16384.0
/* The dirty-rate probe's window. */
#define PROBE_NS (20 * NS_PER_MS)
/* Pages hashed to time --verify. */
#define VERIFY_SAMPLE_PAGES 1024

int meter_init(struct meter *m, struct dirty *dirty, uint64_t npages, unsigned nr_vcpus,
	       bool compressing, uint64_t start_ns)
{
	*m = (struct meter){ .dirty = dirty,
			     .npages = npages,
			     .nr_vcpus = nr_vcpus,
			     .compressing = compressing,
			     .start_ns = start_ns,
			     .r = { .bytes_per_page = WIRE_RAW_PAGE_BYTES } };
	m->probe = calloc(BITMAP_WORDS(npages), 8);
	return m->probe ? 0 : err_set(-ENOMEM, "out of memory");
}

void meter_free(struct meter *m)
{
	free(m->probe);
	m->probe = NULL;
}

/* Hashing all of memory happens twice during downtime with verify (source,
 * then destination), forecast from sample pages hashed `times` times; the
 * fastest timing counts: one that was descheduled would promise a
 * switchover that never fits the limit. */
double verify_cost_ms(const struct guest_mem *mem, int times)
{
	uint64_t npages = mem->size / FERRY_PAGE_SIZE;
	uint64_t n = npages < VERIFY_SAMPLE_PAGES ? npages : VERIFY_SAMPLE_PAGES;
	uint64_t best = UINT64_MAX, sum = 0;

	for (int k = 0; k < times; k++) {
		uint64_t t0 = time_now_ns();

		for (uint64_t g = 0; g < n; g++)
			sum += hash64(mem_host(mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE),
				      FERRY_PAGE_SIZE);
		t0 = time_now_ns() - t0;
		best = t0 < best ? t0 : best;
	}
	(void)sum;
	return n ? 2.0 * (double)best / 1e6 * (double)npages / (double)n : 0;
}

/* Each timing keeps the fastest so far. */
static void time_verify(struct meter *m, int times)
{
	double ms = verify_cost_ms(m->verify_mem, times);

	m->verify_ms = m->verify_ms > 0 && m->verify_ms < ms ? m->verify_ms : ms;
}

void meter_time_verify(struct meter *m, const struct guest_mem *mem)
{
	m->verify_mem = mem;
	time_verify(m, 3);
}

void meter_round_start(struct meter *m, const struct meter_sample *s)
{
	m->round_start = *s;
}

double switchover_cost_ms(double sync_ms, double verify_ms, unsigned vcpus, double bandwidth_bps)
{
	double state_ms =
		bandwidth_bps > 0 ? STATE_BYTES_PER_VCPU * vcpus / bandwidth_bps * 1e3 : 0;

	return sync_ms + HANDOFF_ESTIMATE_MS + verify_ms + state_ms;
}

double meter_dirty_bps(const struct meter_reading *r)
{
	return r->dirty_rate_pps * r->bytes_per_page;
}

/* The link's rate is what left the sockets, not what went into them: a
 * round that fills an empty socket buffer would look faster. A short small
 * round says little (a shaper's burst after an idle moment, or a link that
 * idled because there was little to send), but until something better
 * comes it is a lower bound: without one, a guest of zero pages (a few
 * bytes each) would never be found able to switch over. */
static void measure_link(struct meter *m, const struct meter_sample *a,
			 const struct meter_sample *b, double secs)
{
	uint64_t bytes = b->bytes - a->bytes;
	uint64_t gone_a = a->bytes > a->queued ? a->bytes - a->queued : 0;
	uint64_t gone_b = b->bytes > b->queued ? b->bytes - b->queued : 0;
	bool telling = bytes >= MIN_BYTES_FOR_BANDWIDTH &&
		       (secs >= MIN_SECS_FOR_BANDWIDTH || bytes >= 16 * MIN_BYTES_FOR_BANDWIDTH);

	if (gone_b > gone_a && secs > 0 && (telling || m->r.bandwidth_bps <= 0))
		m->r.bandwidth_bps = (double)(gone_b - gone_a) / secs;
}

/* Round 0 averages in every zero page of the guest; the pages that get
 * dirtied again are written ones. Learn the cost from later rounds; in
 * round 0, from what compression made of the written ones. */
static void measure_page_cost(struct meter *m, const struct meter_sample *a,
			      const struct meter_sample *b)
{
	uint64_t pages = b->pages - a->pages;

	if (pages && m->rounds > 0)
		m->r.bytes_per_page = (double)(b->bytes - a->bytes) / (double)pages;
	else if (m->compressing && b->raw_bytes)
		m->r.bytes_per_page = WIRE_ENTRY_BYTES + FERRY_PAGE_SIZE * (double)b->wire_bytes /
								 (double)b->raw_bytes;
}

int meter_round_end(struct meter *m, const struct meter_sample *end, uint64_t *next)
{
	double secs = (double)(end->ns - m->round_start.ns) / 1e9;
	int64_t n;

	measure_link(m, &m->round_start, end, secs);
	measure_page_cost(m, &m->round_start, end);
	m->sync_ns = time_now_ns();
	n = dirty_sync(m->dirty, next);
	if (n < 0)
		return (int)n;
	m->r.rounds = ++m->rounds;
	m->r.dirty_pages = (uint64_t)n;
	m->r.queued_bytes = end->queued;
	m->r.dirty_rate_pps = secs > 0 ? (double)n / secs : 0;
	if (m->verify_mem)
		time_verify(m, 1);
	m->r.switchover_ms =
		switchover_cost_ms((double)dirty_get_stats(m->dirty).last_sync_ns / 1e6,
				   m->verify_ms, m->nr_vcpus, m->r.bandwidth_bps);
	m->r.elapsed_s = (double)(time_now_ns() - m->start_ns) / 1e9;
	m->r.round_s = secs;
	return 0;
}

void meter_live(const struct meter *m, const struct meter_sample *now, struct meter_reading *out)
{
	double secs = (double)(now->ns - m->round_start.ns) / 1e9;
	uint64_t gone0 = m->round_start.bytes - m->round_start.queued;
	uint64_t gone = now->bytes > now->queued ? now->bytes - now->queued : 0;

	*out = m->r;
	out->elapsed_s = (double)(now->ns - m->start_ns) / 1e9;
	if (out->bandwidth_bps <= 0 && secs > 0 && gone > gone0)
		out->bandwidth_bps = (double)(gone - gone0) / secs;
}

void meter_carry(struct meter *m, uint64_t *next, uint64_t *carry)
{
	bitmap_or_take(next, carry, m->npages);
	m->r.dirty_pages = bitmap_count(next, m->npages);
}

int meter_probe(struct meter *m, uint64_t *next)
{
	uint64_t t0 = m->sync_ns; /* pages written during that sync count here */
	int64_t n;
	double rate;

	time_sleep_ns(PROBE_NS);
	n = dirty_sync(m->dirty, m->probe);
	if (n < 0)
		return (int)n;
	rate = (double)n * 1e9 / (double)(time_now_ns() - t0);
	if (rate > m->r.dirty_rate_pps)
		m->r.dirty_rate_pps = rate;
	bitmap_or_take(next, m->probe, m->npages);
	m->r.dirty_pages = bitmap_count(next, m->npages);
	return 0;
}
