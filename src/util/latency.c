#include "util/latency.h"

#include <stdbool.h>

#include "util/time.h"

/* Under 4 us: one bucket a microsecond; then [2^e (4 + q) / 4, 2^e (5 + q) / 4)
 * is bucket 4e + q. */
static unsigned bucket_of(uint64_t ns)
{
	uint64_t us = ns / NS_PER_US;
	unsigned e, b;

	if (us < 4)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us);
	b = 4 * e + (unsigned)((us >> (e - 2)) & 3);
	return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

/* The upper edge of bucket b, in ns. */
static uint64_t edge_ns(unsigned b)
{
	if (b < 8) /* 4-7 stay empty */
		return (b < 4 ? b + 1 : 4) * NS_PER_US;
	return ((5ull + b % 4) << (b / 4 - 2)) * NS_PER_US;
}

void latency_add(struct latency *l, uint64_t ns)
{
	uint64_t max = __atomic_load_n(&l->max_ns, __ATOMIC_RELAXED);

	__atomic_fetch_add(&l->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&l->bucket[bucket_of(ns)], 1, __ATOMIC_RELAXED);
	while (ns > max && !__atomic_compare_exchange_n(&l->max_ns, &max, ns, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void latency_copy(struct latency *to, const struct latency *l)
{
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++)
		to->bucket[b] = __atomic_load_n(&l->bucket[b], __ATOMIC_RELAXED);
	to->count = __atomic_load_n(&l->count, __ATOMIC_RELAXED);
	to->max_ns = __atomic_load_n(&l->max_ns, __ATOMIC_RELAXED);
}

uint64_t latency_percentile_ns(const struct latency *l, double p)
{
	uint64_t count = __atomic_load_n(&l->count, __ATOMIC_RELAXED), seen = 0;
	uint64_t max = __atomic_load_n(&l->max_ns, __ATOMIC_RELAXED);

	if (!count)
		return 0;
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++) {
		uint64_t edge = edge_ns(b);

		seen += __atomic_load_n(&l->bucket[b], __ATOMIC_RELAXED);
		if ((double)seen >= p * (double)count)
			return edge < max ? edge : max;
	}
	return max;
}

void latency_pow2(const struct latency *l, uint64_t hist[LATENCY_POW2])
{
	for (unsigned k = 0; k < LATENCY_POW2; k++)
		hist[k] = 0;
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++) {
		/* Under 4 us: 0, 1, 2-3 us; then the four of [2^e, 2^(e+1)) us. */
		unsigned k = b < 4 ? (b < 2 ? b : 2) : b / 4 + 1;

		hist[k < LATENCY_POW2 ? k : LATENCY_POW2 - 1] +=
			__atomic_load_n(&l->bucket[b], __ATOMIC_RELAXED);
	}
}
