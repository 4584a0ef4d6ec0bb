/* The one place that decides to switch over or to give up (send/policy.h):
 * both sides of every rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "migration/send/policy.h"
#include "util/error.h"

/* 1000 pages of 4 KiB at 4 MB/s (1000 pages/s), 5 ms fixed cost. */
static struct meter_reading reading(void)
{
	return (struct meter_reading){ .dirty_pages = 1000,
				       .bytes_per_page = 4096,
				       .bandwidth_bps = 4096e3,
				       .switchover_ms = 5,
				       .elapsed_s = 1,
				       .rounds = 1 };
}

static const struct converge_outlook can_act = { .exhausted = false, .why = "it can act" };
static const struct converge_outlook nothing_left = { .exhausted = true,
						      .why = "sdps at 99% is not enough" };

static enum policy_decision decide(struct policy *pol, const struct meter_reading *r,
				   const struct converge_outlook *o, char *why)
{
	struct mig_params p;

	mig_params_default(&p);
	return policy_decide(pol, r, &p, o, why, 400);
}

static void test_switchover(void **unused)
{
	struct meter_reading r = reading();
	struct policy pol = { 0 };
	char why[400];

	(void)unused;
	/* 1000 pages at 1000 pages/s: 1 s + 5 ms */
	assert_true(policy_expected_downtime_ms(&r) > 1004 &&
		    policy_expected_downtime_ms(&r) < 1006);
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
	r.dirty_pages = 100; /* 100 ms + 5: fits, and the guest dirties little: one more round */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
	r.dirty_pages = 10; /* 10 ms + 5: not worth another */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_SWITCHOVER);
	r.dirty_pages = 100;
	r.dirty_rate_pps = 800; /* another round would leave 80% of it */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_SWITCHOVER);
	r.queued_bytes = 4096 * 300; /* still 300 ms of data in the socket */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
	r.bandwidth_bps = 0; /* nothing measured: never stop on a guess */
	r.dirty_pages = 1;
	r.queued_bytes = 0;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
}

/* A throttle holds its guest at about half the link: such a guest goes on
 * while its rounds shrink, so its downtime does not depend on which side of
 * a half one round's measurement fell. */
static void test_slowed(void **unused)
{
	struct converge_outlook slowed = can_act;
	struct meter_reading r = reading();
	struct policy pol = { 0 };
	char why[400];

	(void)unused;
	slowed.slowed = true;
	r.dirty_pages = 100; /* 100 ms + 5: fits */
	r.dirty_rate_pps = 550;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_SWITCHOVER);
	assert_int_equal(decide(&pol, &r, &slowed, why), POLICY_CONTINUE);
	r.dirty_rate_pps = 450;
	assert_int_equal(decide(&pol, &r, &slowed, why), POLICY_CONTINUE);
	r.dirty_rate_pps = 800; /* it would leave 80%: not worth a round */
	assert_int_equal(decide(&pol, &r, &slowed, why), POLICY_SWITCHOVER);
	r.dirty_rate_pps = 550;
	r.dirty_pages = 10; /* 10 ms + 5: a small share of the limit */
	assert_int_equal(decide(&pol, &r, &slowed, why), POLICY_SWITCHOVER);
}

static void test_timeout(void **unused)
{
	struct meter_reading r = reading();
	struct mig_params p;
	struct policy pol = { 0 };
	char why[400];

	(void)unused;
	mig_params_default(&p);
	r.dirty_rate_pps = 25600;
	r.elapsed_s = 599;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
	r.elapsed_s = 601;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_GIVE_UP);
	assert_non_null(strstr(why, "did not converge in 600 s: the guest dirties 100 MiB/s"));
	/* Mid-round, the same deadline; none with timeout 0. */
	assert_int_equal(policy_check_timeout(&r, &p, 599, 5), 0);
	assert_int_equal(policy_check_timeout(&r, &p, 600, 5), -ETIMEDOUT);
	assert_non_null(strstr(err_msg(), "and 5 dirty pages would take"));
	r.rounds = 0; /* in round 0, a sentence of its own */
	assert_int_equal(policy_check_timeout(&r, &p, 600, 5), -ETIMEDOUT);
	assert_non_null(strstr(
		err_msg(),
		"the first copy of memory did not even finish (the link carries 4 MiB/s, and 5 pages were still to send)"));
	p.timeout_s = 0;
	assert_int_equal(policy_check_timeout(&r, &p, 1e9, 5), 0);
}

/* A limit below the fixed cost: give up only after POLICY_FIXED_COST_S, and
 * only while the pages are not what is in the way. */
static void test_fixed_cost(void **unused)
{
	struct meter_reading r = reading();
	struct policy pol = { 0 };
	char why[400];

	(void)unused;
	r.dirty_pages = 1;
	r.switchover_ms = 400;
	r.elapsed_s = POLICY_FIXED_COST_S - 1;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
	r.elapsed_s = POLICY_FIXED_COST_S;
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_GIVE_UP);
	assert_non_null(strstr(why, "the switchover alone takes 400 ms"));
	r.dirty_pages = 3; /* a few: still not what is in the way */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_GIVE_UP);
	r.dirty_pages = 1000; /* the pages are in the way too: keep trying */
	assert_int_equal(decide(&pol, &r, &can_act, why), POLICY_CONTINUE);
}

/* Rounds that stop shrinking: give up only with nothing left to try, and
 * only while the guest dirties faster than the target share of the link. */
static void test_stuck(void **unused)
{
	struct meter_reading r = reading();
	struct policy pol = { 0 }, pol2 = { 0 }, pol3 = { 0 };
	char why[400];

	(void)unused;
	r.dirty_rate_pps = 900; /* 90% of the link */
	for (int i = 0; i < POLICY_STUCK_ROUNDS; i++)
		assert_int_equal(decide(&pol, &r, &nothing_left, why), POLICY_CONTINUE);
	assert_int_equal(decide(&pol, &r, &nothing_left, why), POLICY_GIVE_UP);
	assert_non_null(strstr(why, "cannot converge: the guest dirties"));
	assert_non_null(strstr(why, "sdps at 99% is not enough"));
	for (int i = 0; i <= POLICY_STUCK_ROUNDS + 1; i++) /* the strategy can still act */
		assert_int_equal(decide(&pol2, &r, &can_act, why), POLICY_CONTINUE);
	r.dirty_rate_pps = 400; /* under the target: the limit's doing, not the guest's */
	for (int i = 0; i <= POLICY_STUCK_ROUNDS + 1; i++)
		assert_int_equal(decide(&pol3, &r, &nothing_left, why), POLICY_CONTINUE);
}

/* A round that shrinks what is left starts the count again. */
static void test_progress_resets(void **unused)
{
	struct meter_reading r = reading();
	struct policy pol = { 0 };
	char why[400];

	(void)unused;
	r.dirty_rate_pps = 900;
	for (int i = 0; i < POLICY_STUCK_ROUNDS; i++)
		assert_int_equal(decide(&pol, &r, &nothing_left, why), POLICY_CONTINUE);
	r.dirty_pages = 800; /* shrank by 20% */
	assert_int_equal(decide(&pol, &r, &nothing_left, why), POLICY_CONTINUE);
	assert_int_equal(pol.stuck, 0);
}

/* The dirty-rate probe: when the count is in the link's way, or after a
 * long round whose leftover does not fit the limit; not otherwise, and
 * never before the link was measured. */
static void test_probe(void **unused)
{
	struct meter_reading r = reading(); /* leaves 1005 ms against 300 */
	struct mig_params p;

	(void)unused;
	mig_params_default(&p);
	r.round_s = 0.5;
	assert_false(policy_wants_probe(&r, &p));
	r.round_s = POLICY_PROBE_ROUND_S;
	assert_true(policy_wants_probe(&r, &p));
	r.dirty_pages = 50; /* 55 ms: fits */
	assert_false(policy_wants_probe(&r, &p));
	r.round_s = 0.5;
	r.dirty_rate_pps = 600; /* 2.4 MB/s: over half the link */
	assert_true(policy_wants_probe(&r, &p));
	r.bandwidth_bps = 0;
	assert_false(policy_wants_probe(&r, &p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switchover), cmocka_unit_test(test_slowed),
		cmocka_unit_test(test_timeout),	   cmocka_unit_test(test_fixed_cost),
		cmocka_unit_test(test_stuck),	   cmocka_unit_test(test_progress_resets),
		cmocka_unit_test(test_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
