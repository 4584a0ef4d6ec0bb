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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
