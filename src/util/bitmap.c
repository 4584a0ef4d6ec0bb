#include "util/bitmap.h"

#include <string.h>

uint64_t bitmap_count(const uint64_t *map, uint64_t nbits)
{
	uint64_t n = 0, words = nbits / 64;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(map[i]);
	if (nbits % 64)
		n += (uint64_t)__builtin_popcountll(map[words] & ((1ull << (nbits % 64)) - 1));
	return n;
}

void bitmap_or_take(uint64_t *dst, uint64_t *src, uint64_t nbits)
{
	for (uint64_t i = 0; i < BITMAP_WORDS(nbits); i++)
		if (__atomic_load_n(&src[i], __ATOMIC_RELAXED))
			dst[i] |= __atomic_exchange_n(&src[i], 0, __ATOMIC_RELAXED);
}

void bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t nbits)
{
	for (uint64_t i = 0; i < BITMAP_WORDS(nbits); i++)
		dst[i] |= src[i];
}

void bitmap_clear_below(uint64_t *map, uint64_t bit)
{
	memset(map, 0, bit / 64 * 8);
	if (bit % 64)
		map[bit / 64] &= ~0ull << (bit % 64);
}

uint64_t bitmap_next_atomic(const uint64_t *map, uint64_t nbits, uint64_t from)
{
	uint64_t i = from / 64, word;

	if (from >= nbits)
		return nbits;
	word = __atomic_load_n(&map[i], __ATOMIC_RELAXED) & (~0ull << (from % 64));
	while (!word) {
		if (++i >= BITMAP_WORDS(nbits))
			return nbits;
		word = __atomic_load_n(&map[i], __ATOMIC_RELAXED);
	}
	from = i * 64 + (uint64_t)__builtin_ctzll(word);
	return from < nbits ? from : nbits;
}

uint64_t bitmap_next(const uint64_t *map, uint64_t nbits, uint64_t from)
{
	uint64_t i = from / 64, word;

	if (from >= nbits)
		return nbits;
	word = map[i] & (~0ull << (from % 64));
	while (!word) {
		if (++i >= BITMAP_WORDS(nbits))
			return nbits;
		word = map[i];
	}
	from = i * 64 + (uint64_t)__builtin_ctzll(word);
	return from < nbits ? from : nbits;
}
