/* Fixed-size bitmaps of 64-bit words, with atomic set, clear and test for concurrent writers. */
#ifndef FERRY_UTIL_BITMAP_H
#define FERRY_UTIL_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BITMAP_WORDS(nbits) (((nbits) + 63) / 64)

static inline void bitmap_set(uint64_t *map, uint64_t bit)
{
	map[bit / 64] |= 1ull << (bit % 64);
}

static inline void bitmap_set_atomic(uint64_t *map, uint64_t bit)
{
	__atomic_fetch_or(&map[bit / 64], 1ull << (bit % 64), __ATOMIC_RELAXED);
}

static inline void bitmap_clear_atomic(uint64_t *map, uint64_t bit)
{
	__atomic_fetch_and(&map[bit / 64], ~(1ull << (bit % 64)), __ATOMIC_RELAXED);
}

/* Clear bit; whether it was set. */
static inline bool bitmap_test_and_clear_atomic(uint64_t *map, uint64_t bit)
{
	uint64_t m = 1ull << (bit % 64);

	return __atomic_fetch_and(&map[bit / 64], ~m, __ATOMIC_RELAXED) & m;
}

static inline bool bitmap_test_atomic(const uint64_t *map, uint64_t bit)
{
	return __atomic_load_n(&map[bit / 64], __ATOMIC_RELAXED) >> (bit % 64) & 1;
}

static inline bool bitmap_test(const uint64_t *map, uint64_t bit)
{
	return map[bit / 64] >> (bit % 64) & 1;
}

/* Number of bits set in the first nbits. */
uint64_t bitmap_count(const uint64_t *map, uint64_t nbits);

/* dst |= src over nbits, atomically taking src's words to zero. */
void bitmap_or_take(uint64_t *dst, uint64_t *src, uint64_t nbits);

/* Index of the next set bit at or after from, or nbits if none. */
uint64_t bitmap_next(const uint64_t *map, uint64_t nbits, uint64_t from);
/* The same, while other threads change the map atomically. */
uint64_t bitmap_next_atomic(const uint64_t *map, uint64_t nbits, uint64_t from);
/* dst |= src over the first nbits (src stays). */
void bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t nbits);
/* Clear bits [0, bit). */
void bitmap_clear_below(uint64_t *map, uint64_t bit);

#endif
