/* util/hash: each instruction set's XXH3 gives libxxhash's values, one-shot
 * and fed in pieces, seeded or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t's fields */
#include <xxhash.h>

#include "util/hash.h"
#include "util/hash_impl.h"

static uint8_t data[70000];

static void check(const struct hash_impl *h)
{
	static const size_t lens[] = { 0, 1, 3, 16, 17, 128, 129, 240, 241, 4096, 65536, 70000 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (uint64_t seed = 0; seed < 3; seed++) {
			struct hash_state st;
			size_t at = 0, step = 1;

			assert_true(h->hash(data, lens[i], seed) ==
				    XXH3_64bits_withSeed(data, lens[i], seed));
			h->begin(&st, seed);
			for (; at < lens[i]; at += step, step = step * 3 + 1)
				h->update(&st, data + at, step < lens[i] - at ? step : lens[i] - at);
			assert_true(h->end(&st) == XXH3_64bits_withSeed(data, lens[i], seed));
		}
	}
}

static void test_sse2(void **unused)
{
	(void)unused;
	check(&hash_sse2);
}

static void test_avx2(void **unused)
{
	(void)unused;
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2"))
		skip();
	check(&hash_avx2);
}

/* A state on the stack is whatever the stack held: one whose stale seed
 * matches must still hash with the right secret (XXH3's reset trusts the
 * seed it finds; a checksum that failed now and then under ASan). */
static void test_stale_state(void **unused)
{
	struct hash_state st;
	XXH3_state_t *x = (XXH3_state_t *)st.opaque;

	(void)unused;
	memset(&st, 0xbe, sizeof(st));
	x->seed = 42;
	x->extSecret = NULL;
	hash_begin(&st, 42);
	hash_update(&st, data, 1000);
	assert_true(hash_end(&st) == XXH3_64bits_withSeed(data, 1000, 42));
}

static void test_chosen(void **unused)
{
	(void)unused;
	assert_true(hash64(data, sizeof(data)) == XXH3_64bits(data, sizeof(data)));
	print_message("hash: %s\n", hash_impl_name());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sse2),
		cmocka_unit_test(test_avx2),
		cmocka_unit_test(test_stale_state),
		cmocka_unit_test(test_chosen),
	};

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
