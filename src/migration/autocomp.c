#include "migration/autocomp.h"

#include <stdio.h>
#include <string.h>

/* Weight of a new measurement in the running averages. */
#define EWMA 0.3
/* A window in which the workers waited this share of its time on their
 * sockets was limited by the link. */
#define LINK_BOUND_WAIT 0.25
/* A gap this long between sends (a round's end, a dirty sync) ends a window:
 * idle time says nothing about codecs. */
#define WINDOW_GAP_NS (20ull * 1000 * 1000)
/* The model must promise this much more before a trial, and a trial must
 * deliver this much more to stay. */
#define TRIAL_PROMISE 1.2
#define TRIAL_KEEP    1.05

/* A mix's share moves in steps of this: finer says nothing in a noisy world. */
#define SHARE_STEP 0.05

static const char *const names[] = { "none", "lz4", "zstd" };

const char *autocomp_codec_name(enum autocomp_codec c)
{
	return names[c];
}

const char *autocomp_plan_name(const struct autocomp_plan *p, char *buf, unsigned len)
{
	if (p->lo == p->hi)
		snprintf(buf, len, "%s", names[p->lo]);
	else
		snprintf(buf, len, "%s+%s:%.0f%%", names[p->lo], names[p->hi], p->hi_share * 100);
	return buf;
}

static bool same_codecs(const struct autocomp_plan *x, const struct autocomp_plan *y)
{
	return x->lo == y->lo && x->hi == y->hi;
}

/* Per raw byte: CPU seconds of one worker, and wire bytes. */
static double cpu_per_byte(const struct autocomp *a, enum autocomp_codec c)
{
	return c == AUTOCOMP_NONE ? 0 : 1 / a->speed_bps[c];
}

/* Raw bytes per second the plan would move with share f on hi, by the
 * model: the lesser of what the workers compress and the link carries. */
static double moves(const struct autocomp *a, enum autocomp_codec lo, enum autocomp_codec hi,
		    double f)
{
	double cpu = (1 - f) * cpu_per_byte(a, lo) + f * cpu_per_byte(a, hi);
	double wire = (1 - f) * a->ratio[lo] + f * a->ratio[hi];
	double by_link = a->link_bps / wire, by_cpu = cpu > 0 ? a->workers / cpu : by_link;

	return by_cpu < by_link ? by_cpu : by_link;
}

static double plan_moves(const struct autocomp *a, const struct autocomp_plan *p)
{
	return moves(a, p->lo, p->hi, p->hi_share);
}

/* The share of hi that keeps CPU and link equally busy, in [0, 1]: more hi
 * costs CPU and saves link. */
static double balanced_share(const struct autocomp *a, enum autocomp_codec lo,
			     enum autocomp_codec hi)
{
	double w = a->workers, l = a->link_bps, clo = cpu_per_byte(a, lo);
	double den = w * (a->ratio[hi] - a->ratio[lo]) - l * (cpu_per_byte(a, hi) - clo);
	double f = den != 0 ? (l * clo - w * a->ratio[lo]) / den : 0;

	f = f < 0 ? 0 : f > 1 ? 1 : f;
	return (double)(long)(f / SHARE_STEP + 0.5) * SHARE_STEP;
}

static bool known(const struct autocomp *a, enum autocomp_codec c)
{
	return c == AUTOCOMP_NONE || a->samples[c] >= AUTOCOMP_MIN_SAMPLES;
}

/* The best plan the model knows: a single codec or a balanced mix of two. */
static struct autocomp_plan best_plan(const struct autocomp *a)
{
	struct autocomp_plan best = { AUTOCOMP_NONE, AUTOCOMP_NONE, 0 };

	for (int lo = 0; lo < AUTOCOMP_CODECS; lo++)
		for (int hi = lo; hi < AUTOCOMP_CODECS; hi++) {
			struct autocomp_plan p = { (enum autocomp_codec)lo, (enum autocomp_codec)hi,
						   0 };

			if (!known(a, p.lo) || !known(a, p.hi))
				continue;
			if (hi != lo)
				p.hi_share = balanced_share(a, p.lo, p.hi);
			if (p.hi_share <= 0)
				p.hi = p.lo;
			else if (p.hi_share >= 1)
				p = (struct autocomp_plan){ p.hi, p.hi, 0 };
			if (plan_moves(a, &p) > plan_moves(a, &best))
				best = p;
		}
	return best;
}

static void log_change(struct autocomp *a, uint64_t now_ns)
{
	const struct autocomp_plan *p = &a->plan;
	double wire = (1 - p->hi_share) * a->ratio[p->lo] + p->hi_share * a->ratio[p->hi];

	if (a->changes < AUTOCOMP_LOG)
		a->log[a->changes] = (struct autocomp_change){
			.t_ms = (double)(now_ns - a->start_ns) / 1e6,
			.plan = *p,
			.link_mbps = a->link_bps / (1 << 20),
			.ratio = wire > 0 ? 1 / wire : 1,
		};
	a->changes++;
}

void autocomp_init(struct autocomp *a, unsigned workers, uint64_t now_ns)
{
	memset(a, 0, sizeof(*a));
	a->workers = workers ? workers : 1;
	a->ratio[AUTOCOMP_NONE] = 1;
	a->start_ns = now_ns;
	a->ban_ns = AUTOCOMP_BAN_NS;
	log_change(a, now_ns);
}

enum autocomp_codec autocomp_next(struct autocomp *a)
{
	a->credit += a->plan.hi_share;
	if (a->credit < 1)
		return a->plan.lo;
	a->credit -= 1;
	return a->plan.hi;
}

bool autocomp_wants_sample(const struct autocomp *a, enum autocomp_codec c, uint64_t now_ns)
{
	return c != AUTOCOMP_NONE && c != a->plan.lo && c != a->plan.hi &&
	       (a->samples[c] < AUTOCOMP_MIN_SAMPLES ||
		now_ns - a->sampled_ns[c] >= AUTOCOMP_SAMPLE_NS);
}

static void average(double *avg, double x)
{
	*avg = *avg > 0 ? (1 - EWMA) * *avg + EWMA * x : x;
}

void autocomp_observe_codec(struct autocomp *a, enum autocomp_codec c, uint64_t raw, uint64_t wire,
			    uint64_t ns, uint64_t now_ns)
{
	if (c == AUTOCOMP_NONE || !raw)
		return;
	average(&a->ratio[c], (double)wire / (double)raw);
	average(&a->speed_bps[c], (double)raw * 1e9 / (double)(ns ? ns : 1));
	a->sampled_ns[c] = now_ns;
	a->samples[c]++;
}

static double plan_cpu(const struct autocomp *a, const struct autocomp_plan *p)
{
	return (1 - p->hi_share) * cpu_per_byte(a, p->lo) + p->hi_share * cpu_per_byte(a, p->hi);
}

/* Follow the model: a new share of the same codecs at once; other codecs
 * only as a trial, and only if they promise clearly more. More compression
 * only while the link is what limits (DESIGN.md §5): it saves nothing else. */
static void reconsider(struct autocomp *a, bool link_bound, double raw_bps, uint64_t now_ns)
{
	struct autocomp_plan best = best_plan(a);

	if (!link_bound && plan_cpu(a, &best) > plan_cpu(a, &a->plan))
		return;

	if (same_codecs(&best, &a->plan)) {
		double step = best.hi_share - a->plan.hi_share;
		bool moved = step >= 4 * SHARE_STEP || step <= -4 * SHARE_STEP;

		a->plan.hi_share = best.hi_share;
		if (moved)
			log_change(a, now_ns);
		return;
	}
	if (now_ns < a->banned_until_ns ||
	    plan_moves(a, &best) < TRIAL_PROMISE * plan_moves(a, &a->plan))
		return;
	a->trial = true;
	a->trial_from = a->plan;
	/* The lower of the last two windows: a burst (an empty socket buffer
	 * at the start) must not fail the trial. */
	a->trial_baseline_bps = a->prev_bps > 0 && a->prev_bps < raw_bps ? a->prev_bps : raw_bps;
	a->trial_sum_bps = 0;
	a->trial_windows = 0;
	a->plan = best;
	log_change(a, now_ns);
}

static void judge_trial(struct autocomp *a, double raw_bps, uint64_t now_ns)
{
	a->trial_sum_bps += raw_bps;
	if (++a->trial_windows < AUTOCOMP_TRIAL_WINDOWS)
		return;
	a->trial = false;
	if (a->trial_sum_bps / a->trial_windows >= TRIAL_KEEP * a->trial_baseline_bps)
		return;
	/* What limits is not what the model thought: trust it less. */
	a->banned_until_ns = now_ns + a->ban_ns;
	a->ban_ns *= 2;
	a->plan = a->trial_from;
	log_change(a, now_ns);
}

/* A window closed: learn the link, then judge a trial or consider one. */
static void close_window(struct autocomp *a, uint64_t now_ns)
{
	double secs = (double)(now_ns - a->win_start_ns) / 1e9;
	double wire_bps = (double)a->win_wire / secs, raw_bps = (double)a->win_raw / secs;
	bool link_bound = (double)a->win_wait_ns / 1e9 >= LINK_BOUND_WAIT * secs;

	if (link_bound || wire_bps > a->link_bps)
		a->link_bps = wire_bps;
	if (a->trial)
		judge_trial(a, raw_bps, now_ns);
	else
		reconsider(a, link_bound, raw_bps, now_ns);
	a->prev_bps = raw_bps;
}

void autocomp_observe_send(struct autocomp *a, uint64_t raw, uint64_t wire, uint64_t wait_ns,
			   uint64_t now_ns)
{
	if (!a->win_start_ns || now_ns - a->win_last_ns > WINDOW_GAP_NS) {
		a->win_start_ns = now_ns; /* this batch's bytes went before the window */
		a->win_raw = a->win_wire = a->win_wait_ns = 0;
	} else {
		a->win_raw += raw;
		a->win_wire += wire;
		a->win_wait_ns += wait_ns;
	}
	a->win_last_ns = now_ns;
	if (now_ns - a->win_start_ns < AUTOCOMP_WINDOW_NS)
		return;
	close_window(a, now_ns);
	a->win_start_ns = now_ns;
	a->win_raw = a->win_wire = a->win_wait_ns = 0;
}
