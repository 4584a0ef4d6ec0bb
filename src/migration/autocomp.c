#include "migration/autocomp.h"

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

static const char *const names[] = { "none", "lz4", "zstd" };

const char *autocomp_codec_name(enum autocomp_codec c)
{
	return names[c];
}

static void log_change(struct autocomp *a, uint64_t now_ns)
{
	if (a->changes < AUTOCOMP_LOG)
		a->log[a->changes] = (struct autocomp_change){
			.t_ms = (double)(now_ns - a->start_ns) / 1e6,
			.codec = a->choice,
			.link_mbps = a->link_bps / (1 << 20),
			.ratio = a->ratio[a->choice] > 0 ? 1 / a->ratio[a->choice] : 1,
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

bool autocomp_wants_sample(const struct autocomp *a, enum autocomp_codec c, uint64_t now_ns)
{
	return c != AUTOCOMP_NONE && c != a->choice &&
	       (!a->sampled_ns[c] || now_ns - a->sampled_ns[c] >= AUTOCOMP_SAMPLE_NS);
}

static void average(double *avg, double x)
{
	*avg = *avg > 0 ? (1 - EWMA) * *avg + EWMA * x : x;
}

void autocomp_observe_codec(struct autocomp *a, enum autocomp_codec c, uint64_t raw,
			    uint64_t wire, uint64_t ns, uint64_t now_ns)
{
	if (c == AUTOCOMP_NONE || !raw)
		return;
	average(&a->ratio[c], (double)wire / (double)raw);
	average(&a->speed_bps[c], (double)raw * 1e9 / (double)(ns ? ns : 1));
	a->sampled_ns[c] = now_ns;
}

/* Raw bytes per second codec c would move, by the model. */
static double predicted_bps(const struct autocomp *a, enum autocomp_codec c)
{
	double link = a->link_bps / a->ratio[c];

	if (c == AUTOCOMP_NONE)
		return a->link_bps;
	if (a->ratio[c] <= 0)
		return 0;
	return a->speed_bps[c] * a->workers < link ? a->speed_bps[c] * a->workers : link;
}

static void start_trial(struct autocomp *a, double raw_bps, uint64_t now_ns)
{
	enum autocomp_codec best = a->choice;

	if (now_ns < a->banned_until_ns)
		return;
	for (int c = 0; c < AUTOCOMP_CODECS; c++)
		if (predicted_bps(a, (enum autocomp_codec)c) > predicted_bps(a, best))
			best = (enum autocomp_codec)c;
	if (best == a->choice ||
	    predicted_bps(a, best) < TRIAL_PROMISE * predicted_bps(a, a->choice))
		return;
	a->trial = true;
	a->trial_from = a->choice;
	a->trial_baseline_bps = raw_bps;
	a->choice = best;
	log_change(a, now_ns);
}

static void end_trial(struct autocomp *a, double raw_bps, uint64_t now_ns)
{
	a->trial = false;
	if (raw_bps >= TRIAL_KEEP * a->trial_baseline_bps)
		return;
	/* What limits is not what the model thought: trust it less. */
	a->banned_until_ns = now_ns + a->ban_ns;
	a->ban_ns *= 2;
	a->choice = a->trial_from;
	log_change(a, now_ns);
}

/* A window closed: learn the link, then judge a trial or consider one. */
static void close_window(struct autocomp *a, uint64_t now_ns)
{
	double secs = (double)(now_ns - a->win_start_ns) / 1e9;
	double wire_bps = (double)a->win_wire / secs, raw_bps = (double)a->win_raw / secs;

	if ((double)a->win_wait_ns / 1e9 >= LINK_BOUND_WAIT * secs)
		a->link_bps = wire_bps;
	else if (wire_bps > a->link_bps)
		a->link_bps = wire_bps;
	if (a->trial)
		end_trial(a, raw_bps, now_ns);
	else
		start_trial(a, raw_bps, now_ns);
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
