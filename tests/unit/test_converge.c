/* The convergence strategies' pure parts (send/converge.h): each one's
 * throttle for given rates, auto's choice, and what a strategy tells the
 * policy it can still do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "migration/send/converge.h"
#include "vm/vm.h"

#define MB 1e6

static struct mig_params defaults(void)
{
	struct mig_params p;

	mig_params_default(&p);
	return p;
}

/* QEMU's auto-converge: the first step, then one more each round, capped. */
static void test_throttle_steps(void **unused)
{
	struct mig_params p = defaults();
	double r0[2] = { 100 * MB, 100 * MB };
	unsigned now[2] = { 0, 0 }, pct[2];

	(void)unused;
	converge_plan(CONVERGE_THROTTLE, &p, 2, r0, now, 25 * MB, pct);
	assert_int_equal(pct[0], 20);
	assert_int_equal(pct[1], 20);
	now[0] = now[1] = 90;
	converge_plan(CONVERGE_THROTTLE, &p, 2, r0, now, 25 * MB, pct);
	assert_int_equal(pct[0], 99); /* capped at throttle-max */
}

/* sdps: exactly what brings the total to the target, on every vCPU. */
static void test_sdps(void **unused)
{
	struct mig_params p = defaults();
	double r0[2] = { 60 * MB, 40 * MB };
	unsigned now[2] = { 0, 0 }, pct[2];

	(void)unused;
	converge_plan(CONVERGE_SDPS, &p, 2, r0, now, 25 * MB, pct);
	assert_int_equal(pct[0], 75);
	assert_int_equal(pct[1], 75);
	converge_plan(CONVERGE_SDPS, &p, 2, r0, now, 200 * MB, pct); /* fits: none */
	assert_int_equal(pct[0], 0);
}

/* dirty-limit: max-min fair shares; a vCPU under its share is not slowed. */
static void test_dirty_limit(void **unused)
{
	struct mig_params p = defaults();
	double r0[3] = { 90 * MB, 5 * MB, 0 };
	unsigned now[3] = { 0 }, pct[3];

	(void)unused;
	converge_plan(CONVERGE_DIRTY_LIMIT, &p, 3, r0, now, 40 * MB, pct);
	assert_int_equal(pct[0], 62); /* 35 of its 90 */
	assert_int_equal(pct[1], 0);
	assert_int_equal(pct[2], 0);
}

/* auto: dirty-limit when the ring shows a vCPU under its share, else sdps. */
static void test_choose(void **unused)
{
	double uneven[2] = { 90 * MB, 1 * MB }, even[2] = { 50 * MB, 50 * MB };

	(void)unused;
	assert_int_equal(converge_choose(true, 2, uneven, 40 * MB), CONVERGE_DIRTY_LIMIT);
	assert_int_equal(converge_choose(true, 2, even, 40 * MB), CONVERGE_SDPS);
	assert_int_equal(converge_choose(false, 2, uneven, 40 * MB), CONVERGE_SDPS);
}

/* What the policy hears: none asked cannot act; auto that has not acted
 * yet still can; a strategy at its cap cannot. */
static void test_outlook(void **unused)
{
	struct mig_params p = defaults();
	struct vm vm = { .nr_vcpus = 2 };
	struct converge c = { .vm = &vm };
	struct converge_outlook o;

	(void)unused;
	c.active = CONVERGE_NONE;
	c.stats.asked = CONVERGE_NONE;
	converge_outlook(&c, &p, &o);
	assert_true(o.exhausted);
	assert_non_null(strstr(o.why, "--converge none does not slow the guest"));
	c.stats.asked = CONVERGE_AUTO;
	converge_outlook(&c, &p, &o);
	assert_false(o.exhausted);
	c.active = CONVERGE_SDPS;
	c.pct[0] = c.pct[1] = 50;
	converge_outlook(&c, &p, &o);
	assert_false(o.exhausted);
	c.pct[1] = 99;
	converge_outlook(&c, &p, &o);
	assert_true(o.exhausted);
	assert_non_null(strstr(o.why, "sdps at 99% (the maximum)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_throttle_steps), cmocka_unit_test(test_sdps),
		cmocka_unit_test(test_dirty_limit),    cmocka_unit_test(test_choose),
		cmocka_unit_test(test_outlook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
