#include "migration/plan/predict.h"

#include <stdio.h>
#include <string.h>

#include "migration/send/converge.h"
#include "migration/send/encoder.h"
#include "migration/send/meter.h"
#include "migration/send/policy.h"
#include "util/page.h"

#define MIB (1024.0 * 1024.0)

static double least(double a, double b)
{
	return a < b ? a : b;
}

static double most(double a, double b)
{
	return a > b ? a : b;
}

/* Raw bytes per second codec k moves through the workers, on the link:
 * what they compress, or what the link carries of what it makes. */
static double codec_rate(const struct predict_input *in, enum compress_kind k)
{
	double workers = in->params.channels ? in->params.channels : 1;
	double cpu = in->m.codec_bps[k] > 0 ? workers * in->m.codec_bps[k] : 1e30;

	if (k == COMPRESS_NONE || in->m.codec_ratio[k] <= 0)
		return in->link_bps;
	return least(cpu, in->link_bps / in->m.codec_ratio[k]);
}

/* The codec the migration uses; auto: the one that moves pages fastest. */
static enum compress_kind codec_of(const struct predict_input *in)
{
	enum compress_kind best = COMPRESS_NONE;

	if (!in->params.compress.automatic)
		return in->params.compress.kind;
	for (int k = COMPRESS_LZ4; k < COMPRESS_KINDS; k++)
		if (codec_rate(in, (enum compress_kind)k) > codec_rate(in, best))
			best = (enum compress_kind)k;
	return best;
}

/* What the migration's senders copy side by side on this host (0: not
 * measured): one, or a data channel's worker each; as measured for one and
 * for as many as the host has cores, and on the line between the two. */
static double copy_cap(const struct predict_input *in)
{
	double n = in->params.channels ? in->params.channels : 1;
	double all = in->m.copy_parallel_senders, one = in->m.copy_bps;

	if (n <= 1 || all <= 1 || in->m.copy_parallel_bps <= 0 || one <= 0)
		return one;
	if (n >= all)
		return in->m.copy_parallel_bps;
	return one + (in->m.copy_parallel_bps - one) * (n - 1) / (all - 1);
}

/* The input as the replay uses it: the codec fixed, and the link no faster
 * than the workers fill it or the sender copies. */
static struct predict_input with_codec(const struct predict_input *in)
{
	struct predict_input c = *in;
	enum compress_kind k = codec_of(in);
	double copy = copy_cap(in);

	c.params.compress = (struct mig_compress){ .kind = k };
	if (k != COMPRESS_NONE && in->m.codec_ratio[k] > 0)
		c.link_bps = codec_rate(in, k) * in->m.codec_ratio[k];
	if (copy > 0)
		c.link_bps = least(c.link_bps, copy);
	return c;
}

/* A raw page on the wire: its entry and what the codec makes of it. */
static double raw_page_bytes(const struct predict_input *in)
{
	enum compress_kind k = in->params.compress.kind;

	if (k == COMPRESS_NONE || in->m.codec_ratio[k] <= 0)
		return WIRE_RAW_PAGE_BYTES;
	return WIRE_ENTRY_BYTES + FERRY_PAGE_SIZE * in->m.codec_ratio[k];
}

/* What a page re-sent in round k costs on the wire: with XBZRLE (round 0
 * seeds the cache), pages that fit the cache go as deltas, and the others,
 * with line digests beside the cache, as deltas of lines. */
static double page_bytes(const struct predict_input *in, unsigned k)
{
	uint64_t cache = in->params.xbzrle_cache_bytes;
	uint64_t digests = encoder_digest_bytes(cache, in->m.mem_pages);
	double hit, miss = raw_page_bytes(in);

	if (!cache || !in->m.xbzrle_bytes_per_page || k < 1 || !in->m.working_set_pages)
		return miss;
	hit = (double)(cache - digests) / (double)FERRY_PAGE_SIZE / (double)in->m.working_set_pages;
	hit = hit > 1 ? 1 : hit;
	if (digests && in->m.line_bytes_per_page)
		miss = in->m.line_bytes_per_page + WIRE_ENTRY_BYTES;
	return hit * (in->m.xbzrle_bytes_per_page + WIRE_ENTRY_BYTES) + (1 - hit) * miss;
}

/* The share of its pace vCPU i keeps under throttle pct: all of it while
 * the throttle takes only time it would have idled. */
static double kept(const struct predict_input *in, unsigned i, unsigned pct)
{
	double left = 1.0 - pct / 100.0, busy = in->m.vcpu_busy[i] > 0 ? in->m.vcpu_busy[i] : 1.0;

	return left >= busy ? 1.0 : left / busy;
}

/* Each vCPU's dirty rate under throttle pct, in pages/s; their sum. */
static double throttled_rate(const struct predict_input *in, const unsigned *pct, double *r)
{
	double sum = 0;

	for (unsigned i = 0; i < in->m.nr_vcpus; i++) {
		double share = in->m.per_vcpu ? in->m.vcpu_pps[i] : in->m.rate_pps / in->m.nr_vcpus;

		r[i] = share * kept(in, i, pct[i]);
		sum += r[i];
	}
	return sum;
}

/* What the engine's meter reads after a round of secs (out's total so far)
 * that left dirty pages at bpp each, the guest dirtying rate. */
static struct meter_reading reading(const struct predict_input *in, const struct prediction *out,
				    double dirty, double bpp, double rate, double secs)
{
	return (struct meter_reading){
		.dirty_pages = (uint64_t)dirty,
		.bytes_per_page = bpp,
		.bandwidth_bps = in->link_bps,
		.dirty_rate_pps = rate,
		.switchover_ms =
			switchover_cost_ms(in->m.sync_ms, in->params.verify ? in->m.verify_ms : 0,
					   in->m.nr_vcpus, in->link_bps),
		.elapsed_s = out->total_ms / 1e3,
		.round_s = secs,
	};
}

/* The dirty rate the engine reads after a round: the round's count over its
 * time, which stops at the working set when the guest dirties it all within
 * the round, unless the engine probes (policy_wants_probe): then the real
 * rate. */
static double seen_rate(const struct predict_input *in, const struct prediction *out, double rate,
			double dirty, double secs, double bpp)
{
	double counted = secs > 0 ? dirty / secs : rate;
	struct meter_reading r = reading(in, out, dirty, bpp, counted, secs);

	return policy_wants_probe(&r, &in->params) && rate > counted ? rate : counted;
}

/* The engine's decision after a round of secs, as converge_after_round
 * makes it: from the rates it read (seen, of the guest's real rate) under
 * the throttle in force, taken back to what they would be unthrottled as if
 * throttling slowed them in proportion (converge.c, unthrottled_rates), and
 * easing off gently. */
static void decide(const struct predict_input *in, struct prediction *out, double bpp, double seen,
		   double secs)
{
	double r0[VM_MAX_VCPUS], target = CONVERGE_TARGET * in->link_bps;
	double rate = throttled_rate(in, out->pct, r0), wire_rate = seen * bpp;
	unsigned next[VM_MAX_VCPUS];

	for (unsigned i = 0; i < in->m.nr_vcpus; i++)
		r0[i] *= (rate > 0 ? seen / rate : 1) * bpp / (1.0 - out->pct[i] / 100.0);
	if (out->used == CONVERGE_AUTO) {
		if (wire_rate <= target)
			return;
		out->used = converge_choose(in->m.per_vcpu, in->m.nr_vcpus, r0, target);
	}
	if (out->used == CONVERGE_NONE || (out->used == CONVERGE_THROTTLE && wire_rate <= target))
		return;
	converge_plan(out->used, &in->params, in->m.nr_vcpus, r0, out->pct, target, next);
	for (unsigned i = 0; i < in->m.nr_vcpus; i++) {
		unsigned floor = secs < CONVERGE_EASE_MIN_ROUND_S ? out->pct[i] : out->pct[i] / 2;

		out->pct[i] = next[i] < floor ? floor : next[i];
		out->pct_max = out->pct[i] > out->pct_max ? out->pct[i] : out->pct_max;
	}
}

/* What the model's strategy can still do, as converge_outlook says it. */
static void outlook(const struct predict_input *in, const struct prediction *out,
		    struct converge_outlook *o)
{
	o->exhausted = out->used == CONVERGE_NONE || out->pct_max >= in->params.throttle_max;
	o->slowed = false;
	for (unsigned i = 0; i < in->m.nr_vcpus; i++)
		o->slowed |= out->pct[i] > 0;
	snprintf(o->why, sizeof(o->why), "%s cannot slow it enough",
		 converge_name(out->used == CONVERGE_AUTO ? CONVERGE_NONE : out->used));
}

/* The engine's decision (send/policy.h) on the model's round of secs. */
static enum policy_decision switch_now(const struct predict_input *in, struct prediction *out,
				       struct policy *pol, double dirty, double bpp, double rate,
				       double secs)
{
	struct meter_reading r = reading(in, out, dirty, bpp, rate, secs);
	double expected = policy_expected_downtime_ms(&r);
	struct converge_outlook o;
	enum policy_decision d;

	outlook(in, out, &o);
	if (!out->first_fit_downtime_ms && expected <= (double)in->params.downtime_ms) {
		out->first_fit_downtime_ms = expected;
		out->first_fit_total_ms = out->total_ms + expected;
	}
	d = policy_decide(pol, &r, &in->params, &o, out->why, sizeof(out->why));
	if (d == POLICY_SWITCHOVER) {
		out->converges = true;
		out->downtime_ms = expected;
		out->total_ms += expected;
	}
	return d;
}

/* Round k as the forecast has it. */
static void log_round(struct prediction *out, unsigned k, double pages, double dirtied, double secs)
{
	unsigned pct = 0;

	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		pct = out->pct[i] > pct ? out->pct[i] : pct;
	if (k < MIG_ROUND_LOG)
		out->round_log[k] = (struct round_record){ .pages = (uint64_t)pages,
							   .dirtied = (uint64_t)dirtied,
							   .ms = secs * 1e3,
							   .throttle_pct = pct };
}

void predict(const struct predict_input *asked, struct prediction *out)
{
	struct predict_input c = with_codec(asked), *in = &c;
	double r[VM_MAX_VCPUS], secs, pages = (double)in->m.mem_pages;
	struct policy pol = { 0 };

	memset(out, 0, sizeof(*out));
	out->used = in->params.converge;
	out->codec = in->params.compress.kind;
	secs = ((double)(in->m.mem_pages - in->m.zero_pages) * raw_page_bytes(in) +
		(double)in->m.zero_pages * WIRE_ENTRY_BYTES) /
	       in->link_bps;
	out->total_ms = secs * 1e3;
	for (out->rounds = 1; out->rounds < PREDICT_MAX_ROUNDS; out->rounds++) {
		double rate = throttled_rate(in, out->pct, r), bpp = page_bytes(in, out->rounds);
		double dirty = least(rate * secs, (double)in->m.working_set_pages);
		double seen = seen_rate(in, out, rate, dirty, secs, bpp);

		log_round(out, out->rounds - 1, pages, dirty, secs);
		if (switch_now(in, out, &pol, dirty, bpp, seen, secs) != POLICY_CONTINUE) {
			if (out->converges) /* the last round, paused */
				log_round(out, out->rounds++, dirty, 0, dirty * bpp / in->link_bps);
			return; /* or the reason it gives up is in out->why */
		}
		decide(in, out, bpp, seen, secs);
		secs = dirty * bpp / in->link_bps;
		pages = dirty;
		out->total_ms += secs * 1e3;
	}
	snprintf(out->why, sizeof(out->why),
		 "the guest would still dirty %.0f MiB/s against a link of %.0f MiB/s",
		 throttled_rate(in, out->pct, r) * page_bytes(in, out->rounds) / MIB,
		 in->link_bps / MIB);
}

/* The input with the guest's rate scaled by f and the link's by g. */
static struct predict_input scaled(const struct predict_input *in, double f, double g)
{
	struct predict_input s = *in;

	s.m.rate_pps *= f;
	for (unsigned i = 0; i < s.m.nr_vcpus; i++)
		s.m.vcpu_pps[i] *= f;
	s.link_bps *= g;
	return s;
}

static void widen(struct predict_range *r, const struct prediction *p)
{
	r->converges &= p->converges;
	if (!p->converges)
		return;
	r->total_ms[0] = least(r->total_ms[0], p->total_ms);
	r->total_ms[1] = most(r->total_ms[1], p->total_ms);
	r->downtime_ms[0] = least(r->downtime_ms[0], p->downtime_ms);
	r->downtime_ms[1] = most(r->downtime_ms[1], p->downtime_ms);
	if (p->first_fit_downtime_ms) { /* the engine may stop at the first round that fits */
		r->total_ms[0] = least(r->total_ms[0], p->first_fit_total_ms);
		r->downtime_ms[1] = most(r->downtime_ms[1], p->first_fit_downtime_ms);
	}
}

void predict_range(const struct predict_input *in, const struct prediction *point,
		   struct predict_range *out)
{
	double lo = in->m.rate_pps > 0 && in->m.rate_p10_pps > 0
			    ? in->m.rate_p10_pps / in->m.rate_pps
			    : 1;
	double hi = in->m.rate_pps > 0 && in->m.rate_p90_pps > 0
			    ? in->m.rate_p90_pps / in->m.rate_pps
			    : 1;
	const double rate[] = { lo, 1, hi };
	const double link[] = { 1 - PREDICT_LINK_SPREAD, 1, 1 + PREDICT_LINK_SPREAD };

	*out = (struct predict_range){ .converges = point->converges,
				       .total_ms = { point->total_ms, point->total_ms },
				       .downtime_ms = { point->downtime_ms, point->downtime_ms } };
	/* Not the corners alone: a busier guest may be throttled sooner and
	 * finish sooner, so the ends can lie anywhere on the grid. */
	for (unsigned i = 0; i < 3; i++)
		for (unsigned j = 0; j < 3; j++) {
			struct predict_input s = scaled(in, rate[i], link[j]);
			struct prediction p;

			predict(&s, &p);
			widen(out, &p);
		}
}
