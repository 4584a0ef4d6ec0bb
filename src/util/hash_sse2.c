/* XXH3 for every x86-64 CPU. */
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_SSE2
#include <xxhash.h>

#include "util/hash_impl.h"

HASH_IMPL(sse2);
