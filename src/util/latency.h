/* A latency distribution in buckets of microseconds, four to each power of
 * two (under 4 us, one a microsecond), safe to add to from several threads
 * at once. A percentile is its bucket's upper edge (or the largest seen,
 * if smaller): an upper bound within a quarter. */
#ifndef FERRY_UTIL_LATENCY_H
#define FERRY_UTIL_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS 128 /* up to 2^32 us */
#define LATENCY_POW2	32  /* the coarse histogram's buckets */

struct latency {
	uint64_t count, max_ns;
	uint64_t bucket[LATENCY_BUCKETS];
};

void latency_add(struct latency *l, uint64_t ns);
/* A copy of l, while others may add to it. */
void latency_copy(struct latency *to, const struct latency *l);
/* The latency p (0..1) of the samples lie under, in ns; 0 without any. */
uint64_t latency_percentile_ns(const struct latency *l, double p);
/* The same samples a power of two to a bucket: hist[k] counts those under
 * 2^k us and (k > 0) at least 2^(k-1) us; the last bucket also all above. */
void latency_pow2(const struct latency *l, uint64_t hist[LATENCY_POW2]);

#endif
