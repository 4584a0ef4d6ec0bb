/* --compress auto: which codec moves pages fastest right now. Pure (numbers
 * in, a choice out) and unit-tested; the data channels feed it.
 *
 * A channel's worker compresses a batch, then writes it. With codec c the
 * pages move at min(the workers' compression speed, link / ratio_c): the
 * choice is the codec that maximizes that, none when nothing beats the
 * link (a fast link, or data that does not shrink). The link's capacity is
 * learnt from windows in which the workers waited on their sockets (then
 * the link was the bottleneck and its rate is what we measured); in other
 * windows it is at least what we measured. Codecs not in use are sampled on
 * one batch every AUTOCOMP_SAMPLE_NS to keep their ratio and speed fresh.
 *
 * The model cannot see everything (a destination that applies pages slower
 * than the link carries them, cores shared with the guest), so a switch is a
 * trial: it stays only if pages then really move faster than before, else
 * no switch is tried for a while, twice as long after each failed trial. */
#ifndef FERRY_MIGRATION_AUTOCOMP_H
#define FERRY_MIGRATION_AUTOCOMP_H

#include <stdbool.h>
#include <stdint.h>

enum autocomp_codec { AUTOCOMP_NONE, AUTOCOMP_LZ4, AUTOCOMP_ZSTD, AUTOCOMP_CODECS };

#define AUTOCOMP_SAMPLE_NS (250ull * 1000 * 1000)
#define AUTOCOMP_WINDOW_NS (100ull * 1000 * 1000)
#define AUTOCOMP_LOG	   32
#define AUTOCOMP_BAN_NS	   (2ull * 1000 * 1000 * 1000)

struct autocomp_change {
	double t_ms;
	enum autocomp_codec codec;
	double link_mbps;
	double ratio; /* raw / wire of the chosen codec */
};

struct autocomp {
	unsigned workers;		       /* compressing in parallel (channels, cores) */
	double ratio[AUTOCOMP_CODECS];	       /* wire / raw; 0 = not measured */
	double speed_bps[AUTOCOMP_CODECS];     /* raw bytes/s one worker compresses */
	uint64_t sampled_ns[AUTOCOMP_CODECS];  /* last sample */
	double link_bps;		       /* the link's capacity, wire bytes/s */
	enum autocomp_codec choice;
	uint64_t start_ns;
	/* The current window of sends. */
	uint64_t win_start_ns, win_last_ns, win_raw, win_wire, win_wait_ns;
	/* A trial: the codec it replaced, and the raw rate that had. */
	bool trial;
	enum autocomp_codec trial_from;
	double trial_baseline_bps;
	uint64_t banned_until_ns, ban_ns; /* no new trial before; the next ban */
	uint32_t changes;
	struct autocomp_change log[AUTOCOMP_LOG]; /* the first AUTOCOMP_LOG changes */
};

void autocomp_init(struct autocomp *a, unsigned workers, uint64_t now_ns);
/* Should the batch about to go out also be compressed with c, to measure it? */
bool autocomp_wants_sample(const struct autocomp *a, enum autocomp_codec c, uint64_t now_ns);
/* A batch of raw bytes compressed by c into wire bytes in ns of wall time. */
void autocomp_observe_codec(struct autocomp *a, enum autocomp_codec c, uint64_t raw,
			    uint64_t wire, uint64_t ns, uint64_t now_ns);
/* A batch of raw bytes went out as wire bytes, after waiting wait_ns for the
 * socket. */
void autocomp_observe_send(struct autocomp *a, uint64_t raw, uint64_t wire, uint64_t wait_ns,
			   uint64_t now_ns);
const char *autocomp_codec_name(enum autocomp_codec c);

#endif
