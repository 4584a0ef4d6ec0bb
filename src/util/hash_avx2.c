/* XXH3 for CPUs with AVX2, compiled with -mavx2 (src/meson.build); only
 * called where the CPU has it. */
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

#include "util/hash_impl.h"

HASH_IMPL(avx2);
