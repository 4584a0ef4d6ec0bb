#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "guest/abi.h"
#include "util/error.h"
#include "vm/workload.h"

#define GIB (1ull << 30)

static void test_issue_example(void **unused)
{
	struct ferry_workload_args a;

	(void)unused;
	assert_int_equal(
		workload_parse("dirty:wss=512M,rate=100M,pattern=random,write=byte", GIB, &a), 0);
	assert_int_equal(a.kind, FERRY_WL_DIRTY);
	assert_int_equal(a.wss_pages, (512ull << 20) / 4096);
	assert_int_equal(a.rate_pps, (100ull << 20) / 4096);
	assert_int_equal(a.pattern, FERRY_PAT_RANDOM);
	assert_int_equal(a.write, FERRY_WRITE_BYTE);
	assert_int_equal(a.check, 1);
}

static void test_defaults_and_variants(void **unused)
{
	struct ferry_workload_args a;

	(void)unused;
	assert_int_equal(workload_parse("idle", GIB, &a), 0);
	assert_int_equal(a.kind, FERRY_WL_IDLE);
	assert_int_equal(a.wss_pages, workload_max_wss_pages(GIB));
	assert_true(ferry_ws_gpa(a.wss_pages) + a.wss_pages * 4096 <= GIB);
	assert_int_equal(
		workload_parse("dirty:rate=5000pps,pattern=hotset,hot=20,hits=95,data=text,spin=on",
			       GIB, &a),
		0);
	assert_int_equal(a.rate_pps, 5000);
	assert_int_equal(a.hot_pct, 20);
	assert_int_equal(a.hot_hits_pct, 95);
	assert_int_equal(a.data, FERRY_DATA_TEXT);
	assert_int_equal(a.spin, 1);
	assert_int_equal(workload_parse("dirty:rate=max", GIB, &a), 0);
	assert_int_equal(a.rate_pps, 0);
	assert_int_equal(workload_parse("touch", GIB, &a), 0);
	assert_int_equal(a.check, 0);
}

static void expect_error(const char *spec, const char *words)
{
	struct ferry_workload_args a;

	assert_int_equal(workload_parse(spec, GIB, &a), -EINVAL);
	if (!strstr(err_msg(), words))
		fail_msg("'%s': message '%s' lacks '%s'", spec, err_msg(), words);
}

static void test_errors_name_the_problem(void **unused)
{
	(void)unused;
	expect_error("busy", "workload 'busy' is unknown");
	expect_error("dirty:wss=lots", "wss=lots");
	expect_error("dirty:wss=2G", "does not fit");
	expect_error("dirty:rate=fast", "rate=fast");
	expect_error("dirty:pattern=zigzag", "pattern=zigzag");
	expect_error("dirty:write=dword", "write=dword");
	expect_error("dirty:data=zero", "zero pages would not change");
	expect_error("dirty:hot=150", "hot=150");
	expect_error("dirty:colour=red", "unknown key 'colour'");
	expect_error("dirty:rate", "not key=value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_example),
		cmocka_unit_test(test_defaults_and_variants),
		cmocka_unit_test(test_errors_name_the_problem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
