/* The throttle slows exactly the vCPUs it is asked to: a vCPU at p% does
 * about (100-p)% of its work, and the others keep their pace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/time.h"
#include "vm/throttle.h"
#include "vm/vcpu.h"

/* Work units per second of each vCPU over 500 ms: compute loops for those
 * that compute, pages written for those that dirty. */
static void rates(struct vm *vm, double *out)
{
	uint64_t a[2], b[2];

	for (unsigned i = 0; i < 2; i++)
		a[i] = test_status(vm, i)->work + test_status(vm, i)->pages_written;
	time_sleep_ns(500 * NS_PER_MS);
	for (unsigned i = 0; i < 2; i++) {
		b[i] = test_status(vm, i)->work + test_status(vm, i)->pages_written;
		out[i] = (double)(b[i] - a[i]) * 2;
	}
}

static void test_throttle_one_vcpu(void **unused)
{
	struct vm *vm = test_vm(64, 2, "dirty:rate=max,dirtiers=1", true);
	struct throttle *t;
	double base[2], half[2], most[2];

	(void)unused;
	test_wait_filled(vm);
	rates(vm, base);
	assert_int_equal(throttle_start(vm, &t), 0);
	throttle_set(t, 0, 50);
	time_sleep_ns(50 * NS_PER_MS);
	rates(vm, half);
	throttle_set(t, 0, 90);
	time_sleep_ns(50 * NS_PER_MS);
	rates(vm, most);
	throttle_stop(t);
	print_message("slept %.0f ms\n", vm->vcpus[0]->throttled_ns / 1e6);
	print_message("vCPU 0 (dirties): %.0f -> %.0f (50%%) -> %.0f (90%%) pages/s\n", base[0],
		      half[0], most[0]);
	print_message("vCPU 1 (computes): %.0f -> %.0f -> %.0f units/s\n", base[1], half[1],
		      most[1]);
	assert_true(half[0] < base[0] * 0.65 && half[0] > base[0] * 0.3);
	assert_true(most[0] < base[0] * 0.2);
	assert_true(most[1] > base[1] * 0.8); /* untouched vCPU keeps its pace */
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
