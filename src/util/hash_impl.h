/* The hash functions of one instruction set (util/hash.h picks one). Each
 * util/hash_*.c includes this after xxhash.h, compiled inline for its
 * target. */
#ifndef FERRY_UTIL_HASH_IMPL_H
#define FERRY_UTIL_HASH_IMPL_H

#include "util/hash.h"

struct hash_impl {
	const char *name;
	uint64_t (*hash)(const void *p, size_t len, uint64_t seed);
	void (*begin)(struct hash_state *st, uint64_t seed);
	void (*update)(struct hash_state *st, const void *p, size_t len);
	uint64_t (*end)(const struct hash_state *st);
};

extern const struct hash_impl hash_avx2, hash_sse2;

#define HASH_IMPL(NAME)                                                                       \
	_Static_assert(sizeof(XXH3_state_t) <= sizeof(struct hash_state), "hash state fits"); \
	static uint64_t NAME##_hash(const void *p, size_t len, uint64_t seed)                  \
	{                                                                                      \
		return XXH3_64bits_withSeed(p, len, seed);                                     \
	}                                                                                      \
	static void NAME##_begin(struct hash_state *st, uint64_t seed)                         \
	{                                                                                      \
		/* A reset reads the old seed to skip making the secret again: on an  \
		 * uninitialised state that is stale stack, and a stale match hashes  \
		 * with a stale secret. */                                             \
		XXH3_INITSTATE((XXH3_state_t *)st->opaque);                                    \
		XXH3_64bits_reset_withSeed((XXH3_state_t *)st->opaque, seed);                  \
	}                                                                                      \
	static void NAME##_update(struct hash_state *st, const void *p, size_t len)            \
	{                                                                                      \
		XXH3_64bits_update((XXH3_state_t *)st->opaque, p, len);                        \
	}                                                                                      \
	static uint64_t NAME##_end(const struct hash_state *st)                                \
	{                                                                                      \
		return XXH3_64bits_digest((const XXH3_state_t *)st->opaque);                   \
	}                                                                                      \
	const struct hash_impl hash_##NAME = { #NAME, NAME##_hash, NAME##_begin, NAME##_update, \
					       NAME##_end }

#endif
