#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/size.h"

static void test_parse_good(void **unused)
{
	uint64_t v;

	(void)unused;
	assert_int_equal(size_parse("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(size_parse("1K", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(size_parse("512M", &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(size_parse("1g", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(size_parse("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(size_parse("3TB", &v), 0);
	assert_int_equal(v, 3ull << 40);
}

static void test_parse_bad(void **unused)
{
	static const char *const bad[] = { "",		"G",   "-1",   "1X",
					   "1GG",	"1 G", "1.5G", "99999999999999999999",
					   "20000000T", "1Gb" };
	uint64_t v;

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(size_parse(bad[i], &v), -EINVAL);
	assert_int_equal(size_parse(NULL, &v), -EINVAL);
}

static void test_format(void **unused)
{
	char buf[32];

	(void)unused;
	assert_string_equal(size_format(100, buf, sizeof(buf)), "100 B");
	assert_string_equal(size_format(1536, buf, sizeof(buf)), "1.5 KiB");
	assert_string_equal(size_format(1ull << 30, buf, sizeof(buf)), "1.0 GiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
