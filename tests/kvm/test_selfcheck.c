/* The guest's self-check notices stale and torn pages: on read while it
 * dirties, and in a full sweep on request. Memory is damaged behind the
 * guest's back, the way a migration bug would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/time.h"

struct ws {
	uint64_t pages;
	uint32_t *table;
	uint8_t *base;
};

/* The guest's working set, writable from the test (no dirty marking needed). */
static struct ws ws_of(struct vm *vm)
{
	const struct ferry_params *p = vm_read_ptr(vm, FERRY_PARAMS_GPA, sizeof(*p));
	uint64_t n = p->wl.wss_pages;

	return (struct ws){ .pages = n,
			    .table = (uint32_t *)vm_read_ptr(vm, FERRY_HEAP_GPA, n * 4),
			    .base = (uint8_t *)vm_read_ptr(vm, ferry_ws_gpa(n),
							   n * FERRY_PAGE_SIZE) };
}

static void test_clean_guest_sweeps_clean(void **unused)
{
	struct vm *vm = test_vm(64, 2, "dirty:rate=max,write=byte,data=text", true);

	(void)unused;
	test_wait_filled(vm);
	time_sleep_ns(200 * NS_PER_MS);
	assert_int_equal(test_sweep(vm), 0);
	assert_int_equal(vm->verify_reports, 0);
	vm_destroy(vm);
}

static void test_sweep_finds_stale_and_torn_pages(void **unused)
{
	struct vm *vm = test_vm(64, 2, "idle:data=text", true);
	struct ws w;

	(void)unused;
	test_wait_filled(vm);
	w = ws_of(vm);
	assert_int_equal(vm_pause(vm), 0);
	w.table[10]++;				  /* the guest's record is newer: stale page */
	w.base[20 * FERRY_PAGE_SIZE + 3000] ^= 1; /* data changed under a valid header: torn */
	vm_resume(vm);
	assert_int_equal(test_sweep(vm), 2);
	vm_destroy(vm);
}

static void test_zero_pages_must_stay_zero(void **unused)
{
	struct vm *vm = test_vm(64, 1, "idle:data=zero", true);
	struct ws w;

	(void)unused;
	test_wait_filled(vm);
	w = ws_of(vm);
	assert_int_equal(test_sweep(vm), 0);
	w.base[5 * FERRY_PAGE_SIZE + 100] = 1;
	assert_int_equal(test_sweep(vm), 1);
	vm_destroy(vm);
}

/* A dirtier checks each page before it writes it again. */
static void test_dirtier_reports_stale_page_on_read(void **unused)
{
	struct vm *vm = test_vm(32, 1, "dirty:rate=max,pattern=sequential,write=word", true);
	uint64_t deadline = time_now_ns() + 20 * NS_PER_S;
	struct ws w;

	(void)unused;
	test_wait_filled(vm);
	w = ws_of(vm);
	assert_int_equal(vm_pause(vm), 0);
	w.table[w.pages / 2] += 5;
	vm_resume(vm);
	/* The guest counts the error, then reports it through the port: the
	 * VMM's count may trail the guest's by one exit. Wait for both. */
	while (test_status(vm, 0)->verify_errors == 0 ||
	       __atomic_load_n(&vm->verify_reports, __ATOMIC_RELAXED) == 0) {
		assert_true(time_now_ns() < deadline);
		time_sleep_ns(NS_PER_MS);
	}
	assert_true(test_status(vm, 0)->verify_errors >= 1);
	vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_guest_sweeps_clean),
		cmocka_unit_test(test_sweep_finds_stale_and_torn_pages),
		cmocka_unit_test(test_zero_pages_must_stay_zero),
		cmocka_unit_test(test_dirtier_reports_stale_page_on_read),
	};
	int skip = kvm_or_skip();

	return skip ? skip : cmocka_run_group_tests(tests, NULL, NULL);
}
