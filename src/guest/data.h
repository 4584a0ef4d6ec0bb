/* Page content generators for the guest workloads: counter, text-like and
 * random data, deterministic in (page index, generation, seed) so that the
 * self-check can recompute what a page must hold. Pure C with no libc, built
 * into the guest and into the host's unit tests. */
#ifndef FERRY_GUEST_DATA_H
#define FERRY_GUEST_DATA_H

#include <stdint.h>

static inline uint64_t data_mix(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t data_key(uint64_t index, uint64_t gen, uint64_t seed)
{
	return data_mix(index ^ data_mix(gen ^ data_mix(seed)));
}

/* Fill len bytes at dst with data of kind (enum ferry_data) for key. Text is
 * words from a fixed vocabulary with punctuation and numbers; it compresses
 * about 3:1 with zstd level 1, like real memory rather than a repeated
 * buffer. */
void data_fill(void *dst, uint64_t len, uint32_t kind, uint64_t key);

#endif
