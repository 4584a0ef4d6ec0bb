/* The latency distribution: percentiles are upper bounds within a quarter,
 * never past the largest sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/latency.h"
#include "util/time.h"

static void test_percentiles(void **unused)
{
	struct latency l = { 0 };

	(void)unused;
	assert_int_equal(latency_percentile_ns(&l, 0.5), 0);
	for (int i = 0; i < 90; i++)
		latency_add(&l, 70 * NS_PER_US); /* bucket [64, 80) us */
	for (int i = 0; i < 10; i++)
		latency_add(&l, 900 * NS_PER_US); /* bucket [896, 1024) us */
	assert_int_equal(latency_percentile_ns(&l, 0.5), 80 * NS_PER_US);
	assert_int_equal(latency_percentile_ns(&l, 0.9), 80 * NS_PER_US);
	assert_int_equal(latency_percentile_ns(&l, 0.99), 900 * NS_PER_US); /* the largest */
	latency_add(&l, 3 * NS_PER_US);
	latency_add(&l, 2ull * NS_PER_S); /* far out: still counted, as the largest */
	assert_int_equal(l.count, 102);
	assert_int_equal(l.max_ns, 2ull * NS_PER_S);
	assert_int_equal(latency_percentile_ns(&l, 1.0), 2ull * NS_PER_S);
}

/* The coarse histogram: each sample under the first power of two of us
 * above it. */
static void test_pow2(void **unused)
{
	struct latency l = { 0 };
	uint64_t h[LATENCY_POW2];

	(void)unused;
	latency_add(&l, 500);		     /* under 1 us */
	latency_add(&l, 1 * NS_PER_US);	     /* [1, 2) */
	latency_add(&l, 3 * NS_PER_US);	     /* [2, 4) */
	latency_add(&l, 70 * NS_PER_US);     /* [64, 128) */
	latency_add(&l, 127 * NS_PER_US);    /* [64, 128) */
	latency_add(&l, 128 * NS_PER_US);    /* [128, 256) */
	latency_add(&l, 4000ull * NS_PER_S); /* far out: the last */
	latency_pow2(&l, h);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 1);
	assert_int_equal(h[2], 1);
	assert_int_equal(h[7], 2);
	assert_int_equal(h[8], 1);
	assert_int_equal(h[LATENCY_POW2 - 1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_pow2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
