#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/bitmap.h"

static void test_set_test_count(void **unused)
{
	uint64_t map[3] = { 0 };

	(void)unused;
	bitmap_set(map, 0);
	bitmap_set(map, 63);
	bitmap_set_atomic(map, 64);
	bitmap_set(map, 130);
	assert_true(bitmap_test(map, 63));
	assert_false(bitmap_test(map, 62));
	assert_int_equal(bitmap_count(map, 192), 4);
	/* count stops at nbits, even mid-word */
	assert_int_equal(bitmap_count(map, 130), 3);
	assert_int_equal(bitmap_count(map, 131), 4);
}

static void test_next(void **unused)
{
	uint64_t map[3] = { 0 };

	(void)unused;
	assert_int_equal(bitmap_next(map, 150, 0), 150);
	bitmap_set(map, 5);
	bitmap_set(map, 129);
	assert_int_equal(bitmap_next(map, 150, 0), 5);
	assert_int_equal(bitmap_next(map, 150, 5), 5);
	assert_int_equal(bitmap_next(map, 150, 6), 129);
	assert_int_equal(bitmap_next(map, 129, 6), 129); /* beyond nbits: none */
	assert_int_equal(bitmap_next(map, 150, 200), 150);
	assert_int_equal(bitmap_next_atomic(map, 150, 6), 129);
	assert_int_equal(bitmap_next_atomic(map, 150, 130), 150);
}

static void test_clear_below(void **unused)
{
	uint64_t map[3] = { ~0ull, ~0ull, ~0ull };

	(void)unused;
	bitmap_clear_below(map, 70);
	assert_int_equal(bitmap_next(map, 192, 0), 70);
	assert_int_equal(bitmap_count(map, 192), 192 - 70);
	bitmap_clear_below(map, 128); /* a whole word */
	assert_int_equal(bitmap_next(map, 192, 0), 128);
	assert_int_equal(map[2], ~0ull);
}

static void test_or_take_empties_source(void **unused)
{
	uint64_t dst[2] = { 1, 0 }, src[2] = { 6, 1ull << 63 };

	(void)unused;
	bitmap_or_take(dst, src, 128);
	assert_int_equal(dst[0], 7);
	assert_int_equal(dst[1], 1ull << 63);
	assert_int_equal(src[0], 0);
	assert_int_equal(src[1], 0);
	src[1] = 2;
	bitmap_or(dst, src, 128); /* the source stays */
	assert_int_equal(dst[1], (1ull << 63) | 2);
	assert_int_equal(src[1], 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_test_count),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_clear_below),
		cmocka_unit_test(test_or_take_empties_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
