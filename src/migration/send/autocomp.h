/* --compress auto: which codec moves pages fastest right now. Pure (numbers
 * in, a choice out) and unit-tested; the data channels feed it.
 *
 * A channel's worker compresses a batch, then writes it. With codec c the
 * pages move at min(the workers' compression speed, link / ratio_c): the
 * plan is what maximizes that, none when nothing beats the link (a fast
 * link, or data that does not shrink). When the cheaper codec leaves CPU
 * idle and the denser one leaves the link idle, the plan mixes them: a
 * share of the batches goes to the denser one, so that both stay busy. The
 * link's capacity is learnt from windows in which the workers waited on
 * their sockets (then the link was the bottleneck and its rate is what we
 * measured); in other windows it is at least what we measured, and more
 * compression is not considered: it would only save what is not scarce.
 * Codecs not in use are sampled on
 * one batch every AUTOCOMP_SAMPLE_NS to keep their ratio and speed fresh.
 *
 * The model cannot see everything (a destination that applies pages slower
 * than the link carries them), so a switch is a trial: it stays only if pages then really move
 * faster than before, else no switch is tried for a while, twice as long after each failed trial.
 */
#ifndef FERRY_MIGRATION_SEND_AUTOCOMP_H
#define FERRY_MIGRATION_SEND_AUTOCOMP_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/compress.h"
#include "migration/migration.h"

#define AUTOCOMP_SAMPLE_NS (250ull * 1000 * 1000)
#define AUTOCOMP_WINDOW_NS (100ull * 1000 * 1000)
#define AUTOCOMP_BAN_NS	   (300ull * 1000 * 1000)
/* A codec joins the model after this many samples, taken 8 times as often
 * as later ones: the first pages (page tables, the program) are not typical. */
#define AUTOCOMP_MIN_SAMPLES 8
/* A trial is judged over this many windows. */
#define AUTOCOMP_TRIAL_WINDOWS 2

struct autocomp {
	unsigned workers;		     /* compressing in parallel (channels, cores) */
	double ratio[COMPRESS_KINDS];	     /* wire / raw; 0 = not measured */
	double speed_bps[COMPRESS_KINDS];    /* raw bytes/s one worker compresses */
	uint64_t sampled_ns[COMPRESS_KINDS]; /* last sample */
	uint32_t samples[COMPRESS_KINDS];    /* measurements so far */
	double link_bps;		     /* the link's capacity, wire bytes/s */
	struct codec_plan plan;
	double credit; /* hi_share accumulated: spreads hi's batches evenly */
	uint64_t start_ns;
	/* The current window of sends. */
	uint64_t win_start_ns, win_last_ns, win_raw, win_wire, win_wait_ns;
	/* A trial: the plan it replaced, and the raw rate that had. */
	bool trial;
	struct codec_plan trial_from;
	double trial_baseline_bps, trial_sum_bps;
	uint32_t trial_windows;
	double prev_bps; /* the raw rate of the window before */
	bool probe_down; /* try the codec below next (a trial up paid) */
	double ceiling;	 /* a level that failed: none as high before ceiling_until_ns */
	uint64_t ceiling_until_ns;
	uint64_t banned_until_ns, ban_ns; /* no new trial before; the next ban */
	uint32_t changes;
	struct codec_change log[CODEC_LOG]; /* the first CODEC_LOG changes */
};

void autocomp_init(struct autocomp *a, unsigned workers, uint64_t now_ns);
/* The codec for the next batch, by the plan. */
enum compress_kind autocomp_next(struct autocomp *a);
/* Should the batch about to go out also be compressed with c, to measure it?
 * A yes is counted as the sample taken, so that one worker takes it. */
bool autocomp_take_sample(struct autocomp *a, enum compress_kind c, uint64_t now_ns);
/* A batch of raw bytes compressed by c into wire bytes in ns of wall time. */
void autocomp_observe_codec(struct autocomp *a, enum compress_kind c, uint64_t raw, uint64_t wire,
			    uint64_t ns, uint64_t now_ns);
/* A batch of raw bytes went out as wire bytes, after waiting wait_ns for the
 * socket. */
void autocomp_observe_send(struct autocomp *a, uint64_t raw, uint64_t wire, uint64_t wait_ns,
			   uint64_t now_ns);
/* The plan now and the changes so far, for the report. */
void autocomp_report(const struct autocomp *a, struct codec_report *out);

#endif
