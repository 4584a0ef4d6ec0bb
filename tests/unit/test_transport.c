/* Migration addresses, the rate limiter, and the stop policy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "migration/policy.h"
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

static void test_policy(void **unused)
{
	struct mig_params p;
	struct policy_input in = { .dirty_pages = 1000,
				   .bytes_per_page = 4096,
				   .bandwidth_bps = 4096e3,
				   .switchover_ms = 5,
				   .elapsed_s = 1 };
	char why[400];

	(void)unused;
	mig_params_default(&p);
	/* 1000 pages at 1000 pages/s: 1 s + 5 ms */
	assert_true(policy_expected_downtime_ms(&in) > 1004 &&
		    policy_expected_downtime_ms(&in) < 1006);
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_CONTINUE);
	in.dirty_pages = 100; /* 100 ms + 5: fits, and the guest dirties little */
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_CONTINUE);
	in.dirty_pages = 10; /* one more round left 10 ms + 5: not worth another */
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_SWITCHOVER);
	in.dirty_pages = 100;
	in.dirty_rate_pps = 800; /* another round would leave 80% of it */
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_SWITCHOVER);
	in.queued_bytes = 4096 * 300; /* still 300 ms of data in the socket */
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_CONTINUE);
	in.elapsed_s = 601;
	in.dirty_rate_pps = 25600;
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_GIVE_UP);
	assert_non_null(strstr(why, "did not converge in 600 s: the guest dirties 100 MiB/s"));
	in.bandwidth_bps = 0; /* nothing measured: never stop on a guess */
	in.elapsed_s = 1;
	in.dirty_pages = 1;
	assert_int_equal(policy_decide(&in, &p, why, sizeof(why)), POLICY_CONTINUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_ratelimit_average),
		cmocka_unit_test(test_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
