#include "migration/send/autocomp.h"

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

/* After less compression won a trial, no plan as dense for this long. */
#define DOWN_WON_NS (3000ull * 1000 * 1000)
/* A mix's share moves in steps of this: finer says nothing in a noisy world. */
#define SHARE_STEP 0.05

/* Per raw byte: CPU seconds of one worker. */
static double cpu_per_byte(const struct autocomp *a, enum compress_kind c)
{
	return c == COMPRESS_NONE ? 0 : 1 / a->speed_bps[c];
}

/* Wire bytes per raw byte the plan sends. */
static double plan_wire(const struct autocomp *a, const struct codec_plan *p)
{
	return (1 - p->hi_share) * a->ratio[p->lo] + p->hi_share * a->ratio[p->hi];
}

/* Raw bytes per second the plan would move, by the model: the lesser of
 * what the workers compress and what the link carries. */
static double plan_moves(const struct autocomp *a, const struct codec_plan *p)
{
	double f = p->hi_share;
	double cpu = (1 - f) * cpu_per_byte(a, p->lo) + f * cpu_per_byte(a, p->hi);
	double by_link = a->link_bps / plan_wire(a, p);
	double by_cpu = cpu > 0 ? a->workers / cpu : by_link;

	return by_cpu < by_link ? by_cpu : by_link;
}

/* Plans lie on one axis, the level: 0 none, 1 lz4, 2 zstd, and between two
 * whole levels a mix of the two (1.25: lz4, a quarter of the batches zstd). */
static struct codec_plan plan_at(double level)
{
	int lo = level >= 2 ? 2 : (int)level;
	double share = level - lo;

	if (share < SHARE_STEP / 2)
		return (struct codec_plan){ lo, lo, 0 };
	return (struct codec_plan){ lo, lo + 1, share };
}

static double level_of(const struct codec_plan *p)
{
	return p->lo + p->hi_share;
}

static bool known(const struct autocomp *a, enum compress_kind c)
{
	return c == COMPRESS_NONE || a->samples[c] >= AUTOCOMP_MIN_SAMPLES;
}

/* The level the model likes best among those it can judge (the lowest of
 * equals: less CPU for the same). */
static double best_level(const struct autocomp *a)
{
	double best = 0, best_bps = 0;

	for (double level = 0; level <= 2 + SHARE_STEP / 2; level += SHARE_STEP) {
		struct codec_plan p = plan_at(level);
		double bps;

		if (!known(a, p.lo) || !known(a, p.hi))
			break;
		bps = plan_moves(a, &p);
		if (bps > best_bps * 1.001) {
			best = level;
			best_bps = bps;
		}
	}
	return best;
}

static void log_change(struct autocomp *a, uint64_t now_ns)
{
	double wire = plan_wire(a, &a->plan);

	if (a->changes < CODEC_LOG)
		a->log[a->changes] = (struct codec_change){
			.t_ms = (double)(now_ns - a->start_ns) / 1e6,
			.plan = a->plan,
			.link_mbps = a->link_bps / (1 << 20),
			.ratio = wire > 0 ? 1 / wire : 1,
		};
	a->changes++;
}

void autocomp_init(struct autocomp *a, unsigned workers, uint64_t now_ns)
{
	memset(a, 0, sizeof(*a));
	a->workers = workers ? workers : 1;
	a->ratio[COMPRESS_NONE] = 1;
	a->start_ns = now_ns;
	a->ban_ns = AUTOCOMP_BAN_NS;
	log_change(a, now_ns);
}

enum compress_kind autocomp_next(struct autocomp *a)
{
	a->credit += a->plan.hi_share;
	if (a->credit < 1)
		return a->plan.lo;
	a->credit -= 1;
	return a->plan.hi;
}

bool autocomp_take_sample(struct autocomp *a, enum compress_kind c, uint64_t now_ns)
{
	uint64_t every =
		a->samples[c] < AUTOCOMP_MIN_SAMPLES ? AUTOCOMP_SAMPLE_NS / 8 : AUTOCOMP_SAMPLE_NS;

	if (c == COMPRESS_NONE || c == a->plan.lo || c == a->plan.hi ||
	    now_ns - a->sampled_ns[c] < every)
		return false;
	a->sampled_ns[c] = now_ns;
	return true;
}

static void average(double *avg, double x)
{
	*avg = *avg > 0 ? (1 - EWMA) * *avg + EWMA * x : x;
}

void autocomp_observe_codec(struct autocomp *a, enum compress_kind c, uint64_t raw, uint64_t wire,
			    uint64_t ns, uint64_t now_ns)
{
	if (c == COMPRESS_NONE || !raw)
		return;
	average(&a->ratio[c], (double)wire / (double)raw);
	average(&a->speed_bps[c], (double)raw * 1e9 / (double)(ns ? ns : 1));
	a->sampled_ns[c] = now_ns;
	a->samples[c]++;
}

static void start_trial(struct autocomp *a, double level, double raw_bps, uint64_t now_ns)
{
	a->trial = true;
	a->trial_from = a->plan;
	/* The lower of the last two windows: a burst (an empty socket buffer
	 * at the start) must not fail the trial. */
	a->trial_baseline_bps = a->prev_bps > 0 && a->prev_bps < raw_bps ? a->prev_bps : raw_bps;
	a->trial_sum_bps = 0;
	a->trial_windows = 0;
	a->plan = plan_at(level);
	log_change(a, now_ns);
}

/* Every change is a trial, kept only if pages then move faster, and made
 * only if the model promises clearly more; below a level that failed, for
 * as long as the failure's ban lasts. More compression only while the link
 * is what limits (DESIGN.md §5): it saves nothing else. After compression
 * went up and paid, the whole codec below is tried too: the model may count
 * on CPU that the host (the guest, the destination) does not really have. */
static void reconsider(struct autocomp *a, bool link_bound, double raw_bps, uint64_t now_ns)
{
	double now = level_of(&a->plan), best = best_level(a);
	struct codec_plan want = plan_at(best);

	if (now_ns < a->banned_until_ns)
		return;
	if (a->probe_down) {
		a->probe_down = false;
		if (now > 0) {
			start_trial(a, now > 1 ? 1 : 0, raw_bps, now_ns);
			return;
		}
	}
	if (best > now && now_ns < a->ceiling_until_ns && best >= a->ceiling)
		return;
	if (best == now || (best > now && !link_bound) ||
	    plan_moves(a, &want) < TRIAL_PROMISE * plan_moves(a, &a->plan))
		return;
	start_trial(a, best, raw_bps, now_ns);
}

static void judge_trial(struct autocomp *a, double raw_bps, uint64_t now_ns)
{
	a->trial_sum_bps += raw_bps;
	if (++a->trial_windows < AUTOCOMP_TRIAL_WINDOWS)
		return;
	a->trial = false;
	if (a->trial_sum_bps / a->trial_windows >= TRIAL_KEEP * a->trial_baseline_bps) {
		a->ban_ns = AUTOCOMP_BAN_NS; /* it paid: look again soon */
		a->banned_until_ns = now_ns + a->ban_ns;
		a->probe_down = level_of(&a->plan) > level_of(&a->trial_from);
		if (level_of(&a->plan) < level_of(&a->trial_from)) {
			/* Less compression won: the model overrates the CPU. */
			a->ceiling = level_of(&a->trial_from);
			a->ceiling_until_ns = now_ns + DOWN_WON_NS;
		}
		return;
	}
	/* Nothing better here: look again later and later, and not as high. */
	a->banned_until_ns = now_ns + a->ban_ns;
	if (level_of(&a->plan) > level_of(&a->trial_from)) {
		a->ceiling = level_of(&a->plan);
		a->ceiling_until_ns = now_ns + 4 * a->ban_ns;
	}
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

void autocomp_report(const struct autocomp *a, struct codec_report *out)
{
	out->now = a->plan;
	out->changes = a->changes;
	memcpy(out->log, a->log, sizeof(out->log));
}
