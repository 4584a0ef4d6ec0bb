/* XXH3-64, the one hash ferry uses (record checksums, page hashes for
 * --verify, compressed payloads), compiled in with the widest vector unit
 * the CPU has: AVX2 where there is one, else SSE2 (the value is the same
 * either way, and the same as libxxhash's). Hashing is a pass over every
 * byte that migrates, on both sides: the shared library's generic build ran
 * at about half the speed here (docs/migration.md, where the cycles go). */
#ifndef FERRY_UTIL_HASH_H
#define FERRY_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A hash fed piece by piece (XXH3's state, kept opaque). */
struct hash_state {
	_Alignas(64) unsigned char opaque[640];
};

uint64_t hash64(const void *p, size_t len);
uint64_t hash64_seed(const void *p, size_t len, uint64_t seed);
void hash_begin(struct hash_state *st, uint64_t seed);
void hash_update(struct hash_state *st, const void *p, size_t len);
uint64_t hash_end(const struct hash_state *st);
/* "avx2" or "sse2": what hash64 runs on here. */
const char *hash_impl_name(void);

#endif
