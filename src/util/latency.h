/* A latency distribution in power-of-two buckets of microseconds (bucket
 * i holds [2^i, 2^(i+1)) us, bucket 0 everything under 2 us), safe to add
 * to from several threads at once. Percentiles are a bucket's upper edge
 * (or the largest seen, if smaller): an upper bound, within a factor 2. */
#ifndef FERRY_UTIL_LATENCY_H
#define FERRY_UTIL_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS 32

struct latency {
	uint64_t count, sum_ns, max_ns;
	uint64_t bucket[LATENCY_BUCKETS];
};

void latency_add(struct latency *l, uint64_t ns);
/* The latency p (0..1) of the samples lie under, in ns; 0 without any. */
uint64_t latency_percentile_ns(const struct latency *l, double p);

#endif
