/* The throttle slows exactly the vCPUs it is asked to. Exact: a vCPU at 0%
 * is never put to sleep, one above 0% is. Measured, but without assuming
 * how busy the host is: the throttled vCPU's speed relative to the vCPU left
 * alone (both share the same host) falls as its share rises. How much of
 * the time it sleeps is printed, not asserted: a loaded host kicks late. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/time.h"
#include "vm/throttle.h"
#include "vm/vcpu.h"

#define WINDOW_NS (500 * NS_PER_MS)

struct window {
	double speed[2]; /* work units per second: pages written, or compute loops */
	double slept[2]; /* share of the window asleep for the throttle */
};

static uint64_t units(struct vm *vm, unsigned i)
{
	return test_status(vm, i)->work + test_status(vm, i)->pages_written;
}

static uint64_t slept_ns(struct vm *vm, unsigned i)
{
	return __atomic_load_n(&vm->vcpus[i]->throttled_ns, __ATOMIC_RELAXED);
}

static struct window measure(struct vm *vm)
{
	uint64_t u[2], s[2], t0 = time_now_ns();
	struct window w;

	for (unsigned i = 0; i < 2; i++) {
		u[i] = units(vm, i);
		s[i] = slept_ns(vm, i);
	}
	time_sleep_ns(WINDOW_NS);
	t0 = time_now_ns() - t0;
	for (unsigned i = 0; i < 2; i++) {
		w.speed[i] = (double)(units(vm, i) - u[i]) * 1e9 / (double)t0;
		w.slept[i] = (double)(slept_ns(vm, i) - s[i]) / (double)t0;
	}
	return w;
}

/* vCPU 0's speed as a share of its own before, over vCPU 1's likewise. */
static double relative(const struct window *w, const struct window *base)
{
	return (w->speed[0] / base->speed[0]) / (w->speed[1] / base->speed[1]);
}

static void test_throttle_one_vcpu(void **unused)
{
	struct vm *vm = test_vm(64, 2, "dirty:rate=max,dirtiers=1", true);
	struct window base, half, most;
	struct throttle *t;

	(void)unused;
	test_wait_filled(vm);
	base = measure(vm);
	assert_int_equal(throttle_start(vm, &t), 0);
	throttle_set(t, 0, 50);
	half = measure(vm);
	throttle_set(t, 0, 90);
	most = measure(vm);
	throttle_stop(t);
	print_message("vCPU 0 (dirties) at 50%%: asleep %.0f%% of the time, relative speed %.2f\n",
		      half.slept[0] * 100, relative(&half, &base));
	print_message("vCPU 0 (dirties) at 90%%: asleep %.0f%% of the time, relative speed %.2f\n",
		      most.slept[0] * 100, relative(&most, &base));
	assert_int_equal(slept_ns(vm, 1), 0); /* the vCPU left alone never slept */
	assert_true(half.slept[0] > 0 && most.slept[0] > 0);
	assert_true(relative(&half, &base) < 0.8);
	assert_true(relative(&most, &base) < relative(&half, &base));
	vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_throttle_one_vcpu),
	};

	if (kvm_or_skip())
		return TEST_SKIP;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
