#include "util/hash.h"

#include "util/hash_impl.h"

static const struct hash_impl *impl(void)
{
	static const struct hash_impl *chosen; /* the same for every thread */
	const struct hash_impl *i = __atomic_load_n(&chosen, __ATOMIC_RELAXED);

	if (!i) {
		__builtin_cpu_init();
		i = __builtin_cpu_supports("avx2") ? &hash_avx2 : &hash_sse2;
		__atomic_store_n(&chosen, i, __ATOMIC_RELAXED);
	}
	return i;
}

uint64_t hash64(const void *p, size_t len)
{
	return impl()->hash(p, len, 0);
}

uint64_t hash64_seed(const void *p, size_t len, uint64_t seed)
{
	return impl()->hash(p, len, seed);
}

void hash_begin(struct hash_state *st, uint64_t seed)
{
	impl()->begin(st, seed);
}

void hash_update(struct hash_state *st, const void *p, size_t len)
{
	impl()->update(st, p, len);
}

uint64_t hash_end(const struct hash_state *st)
{
	return impl()->end(st);
}

const char *hash_impl_name(void)
{
	return impl()->name;
}
