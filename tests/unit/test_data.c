/* The guest's data generators: deterministic, and each kind compresses like
 * what it stands for (text about 3:1 with zstd level 1, random not at all). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zstd.h>

#include "guest/abi.h"
#include "guest/data.h"

#define PAGES 256

/* zstd -1 ratio over PAGES pages compressed one page at a time, as a
 * migration compresses them, but in one stream of 128-page batches. */
static double zstd1_ratio(uint32_t kind)
{
	size_t len = PAGES * FERRY_PAGE_SIZE, bound = ZSTD_compressBound(len);
	uint8_t *src = malloc(len), *dst = malloc(bound);
	size_t out = 0;

	for (uint64_t i = 0; i < PAGES; i++)
		data_fill(src + i * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE, kind, data_key(i, 1, 1));
	for (size_t off = 0; off < len; off += 128 * FERRY_PAGE_SIZE) {
		size_t n = ZSTD_compress(dst, bound, src + off, 128 * FERRY_PAGE_SIZE, 1);

		assert_false(ZSTD_isError(n));
		out += n;
	}
	free(src);
	free(dst);
	return (double)len / (double)out;
}

static void test_text_compresses_like_memory(void **unused)
{
	double r = zstd1_ratio(FERRY_DATA_TEXT);

	(void)unused;
	print_message("text: zstd -1 ratio %.2f\n", r);
	assert_true(r > 2.7 && r < 3.3);
}

static void test_random_does_not_compress(void **unused)
{
	(void)unused;
	assert_true(zstd1_ratio(FERRY_DATA_RANDOM) < 1.01);
}

static void test_deterministic_and_prefix_stable(void **unused)
{
	static uint8_t a[4096], b[4096], c[64];

	(void)unused;
	for (uint32_t kind = FERRY_DATA_COUNTER; kind <= FERRY_DATA_RANDOM; kind++) {
		data_fill(a, sizeof(a), kind, 42);
		data_fill(b, sizeof(b), kind, 42);
		assert_memory_equal(a, b, sizeof(a));
		/* The self-check regenerates only a prefix: it must match. */
		data_fill(c, sizeof(c), kind, 42);
		assert_memory_equal(a, c, sizeof(c));
		data_fill(b, sizeof(b), kind, 43);
		assert_memory_not_equal(a, b, sizeof(a));
	}
	data_fill(a, sizeof(a), FERRY_DATA_ZERO, 42);
	for (size_t i = 0; i < sizeof(a); i++)
		assert_int_equal(a[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_compresses_like_memory),
		cmocka_unit_test(test_random_does_not_compress),
		cmocka_unit_test(test_deterministic_and_prefix_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
