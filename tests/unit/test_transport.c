/* Migration addresses and the rate limiter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "transport/ratelimit.h"
#include "transport/uri.h"
#include "util/error.h"
#include "util/size.h"

static void test_uri(void **unused)
{
	struct uri u;

	(void)unused;
	assert_int_equal(uri_parse("tcp:127.0.0.1:4444", &u), 0);
	assert_int_equal(u.kind, URI_TCP);
	assert_string_equal(u.host, "127.0.0.1");
	assert_string_equal(u.port, "4444");
	assert_int_equal(uri_parse("tcp:[::1]:80", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(uri_parse("unix:/tmp/x.sock", &u), 0);
	assert_string_equal(u.path, "/tmp/x.sock");
	assert_int_equal(uri_parse("fd:7", &u), 0);
	assert_int_equal(u.fd, 7);
	assert_int_equal(uri_parse("tcp:host", &u), -EINVAL);
	assert_non_null(strstr(err_msg(), "no port"));
	assert_int_equal(uri_parse("tcp:host:99999", &u), -EINVAL);
	assert_int_equal(uri_parse("tcp::80", &u), -EINVAL);
	assert_int_equal(uri_parse("tcp:[::1:80", &u), -EINVAL);
	assert_int_equal(uri_parse("unix:", &u), -EINVAL);
	assert_int_equal(uri_parse("fd:x", &u), -EINVAL);
	assert_int_equal(uri_parse("http://x", &u), -EINVAL);
	assert_non_null(strstr(err_msg(), "tcp:HOST:PORT, unix:PATH or fd:N"));
}

static void test_rate_parse(void **unused)
{
	uint64_t b;

	(void)unused;
	assert_int_equal(rate_parse("100M", &b), 0);
	assert_int_equal(b, 100ull << 20);
	assert_int_equal(rate_parse("1Gbit", &b), 0);
	assert_int_equal(b, 125000000);
	assert_int_equal(rate_parse("100mbit", &b), 0);
	assert_int_equal(b, 12500000);
	assert_int_equal(rate_parse("8bit", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(rate_parse("1Xbit", &b), -EINVAL);
	assert_int_equal(rate_parse("bit", &b), -EINVAL);
	assert_int_equal(rate_parse("fast", &b), -EINVAL);
}

/* Over a long run the limiter lets through rate x time, whatever the chunks. */
static void test_ratelimit_average(void **unused)
{
	struct ratelimit rl;
	uint64_t now = 1000000000, sent = 0;

	(void)unused;
	ratelimit_init(&rl, 100 << 20);
	while (now < 11000000000ull) { /* 10 simulated seconds */
		now += ratelimit_take(&rl, 1 << 20, now);
		sent += 1 << 20;
	}
	/* 10 s at 100 MiB/s, plus the initial 50 ms burst */
	assert_true(sent >= 1000ull << 20 && sent <= 1010ull << 20);
	ratelimit_init(&rl, 0);
	assert_int_equal(ratelimit_take(&rl, 1ull << 40, now), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_ratelimit_average),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
