/* Dirty tracking reports exactly what was written: every page the guest
 * writes, every page the VMM writes, and nothing outside a documented small
 * set (the vCPUs' status slots, their stacks and the control page). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/workload.h"

#define MEM_MIB 64

/* Pages the guest or the VMM write as a matter of course (docs/guest-abi.md). */
/* PML4, PDPT and the first PD (the first GiB): all a small test VM walks. */
#define PT_WALKED 3

static bool allowed_noise(uint64_t gfn, unsigned vcpus)
{
	uint64_t gpa = gfn * FERRY_PAGE_SIZE;

	if (gpa == FERRY_CONTROL_GPA || (gpa >= FERRY_STATUS_GPA && gpa < FERRY_GDT_GPA))
		return true;
	if (gpa >= FERRY_STALLS_GPA && gpa < FERRY_STALLS_GPA + 2 * FERRY_PAGE_SIZE)
		return true; /* heartbeats */
	/* With nested paging (AMD NPT, Intel EPT with A/D bits) the CPU's walk of
	 * the guest's page tables counts as a write: their A/D bits are preset,
	 * yet the pages it walks are logged dirty. */
	if (gpa >= FERRY_PT_GPA && gpa < FERRY_PT_GPA + PT_WALKED * FERRY_PAGE_SIZE)
		return true;
	return gpa >= FERRY_STACKS_GPA && gpa < FERRY_STACKS_GPA + vcpus * FERRY_STACK_SIZE;
}

static uint64_t *new_bitmap(struct vm *vm)
{
	uint64_t *b = calloc(BITMAP_WORDS(dirty_pages(vm->dirty)), 8);

	assert_non_null(b);
	return b;
}

static int64_t sync_fresh(struct vm *vm, uint64_t *bits)
{
	memset(bits, 0, BITMAP_WORDS(dirty_pages(vm->dirty)) * 8);
	int64_t n = dirty_sync(vm->dirty, bits);

	if (n < 0)
		fail_msg("dirty_sync: %s", err_msg());
	return n;
}

static void touch(struct vm *vm, const uint64_t *pages, unsigned n)
{
	const struct ferry_vcpu_status *st0 = test_status(vm, 0);
	uint64_t req = st0->touch_done + 1, deadline = time_now_ns() + 10 * NS_PER_S;
	uint64_t count = n;

	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, touch_list), pages, n * 8);
	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, touch_count), &count, 8);
	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, touch_req), &req, 8);
	vm_wake(vm);
	while (st0->touch_done != req) {
		assert_true(time_now_ns() < deadline);
		time_sleep_ns(NS_PER_MS);
	}
}

static void check_exact(struct vm *vm, enum dirty_backend backend)
{
	const struct ferry_params *p = vm_read_ptr(vm, FERRY_PARAMS_GPA, sizeof(*p));
	uint64_t ws_gfn = ferry_ws_gpa(p->wl.wss_pages) / FERRY_PAGE_SIZE;
	uint64_t *bits = new_bitmap(vm), pages[200], vmm_page = ws_gfn + 7;
	uint64_t npages = dirty_pages(vm->dirty), noise = 0;

	(void)backend;
	assert_int_equal(dirty_start(vm->dirty), 0);
	/* The first sync reports everything, whatever the backend. */
	assert_int_equal(sync_fresh(vm, bits), (int64_t)npages);

	for (unsigned i = 0; i < 200; i++)
		pages[i] = (i * 7919ull + 13) % p->wl.wss_pages; /* spread, distinct */
	touch(vm, pages, 200);
	uint8_t byte = 0x5a;
	vm_write(vm, vmm_page * FERRY_PAGE_SIZE, &byte, 1);

	sync_fresh(vm, bits);
	for (unsigned i = 0; i < 200; i++)
		if (!bitmap_test(bits, ws_gfn + pages[i]))
			fail_msg("guest write to page %llu was not reported",
				 (unsigned long long)pages[i]);
	assert_true(bitmap_test(bits, vmm_page));
	for (uint64_t g = bitmap_next(bits, npages, 0); g < npages;
	     g = bitmap_next(bits, npages, g + 1)) {
		bool touched = g == vmm_page;

		for (unsigned i = 0; i < 200 && !touched; i++)
			touched = g == ws_gfn + pages[i];
		if (touched)
			continue;
		if (!allowed_noise(g, vm->nr_vcpus))
			fail_msg("page %#llx reported dirty but nobody wrote it",
				 (unsigned long long)(g * FERRY_PAGE_SIZE));
		noise++;
	}
	assert_true(noise <= 2 + 1 + 2 + vm->nr_vcpus * 2 + PT_WALKED);
	/* Nothing written since: only the sleeping guest's own noise. */
	sync_fresh(vm, bits);
	for (uint64_t g = bitmap_next(bits, npages, 0); g < npages;
	     g = bitmap_next(bits, npages, g + 1))
		assert_true(allowed_noise(g, vm->nr_vcpus));
	free(bits);
}

static void test_bitmap_reports_exact_set(void **unused)
{
	struct vm *vm = test_vm(MEM_MIB, 2, "touch", true);

	(void)unused;
	test_wait_filled(vm);
	check_exact(vm, DIRTY_BITMAP);
	vm_destroy(vm);
}

static void test_ring_reports_exact_set(void **unused)
{
	struct vm_config cfg = test_config(MEM_MIB, 2);
	struct vm *vm;

	(void)unused;
	cfg.dirty_backend = DIRTY_RING;
	vm = test_vm_cfg(&cfg, "touch", true);
	test_wait_filled(vm);
	check_exact(vm, DIRTY_RING);
	vm_destroy(vm);
}

/* A ring smaller than the write burst fills up; the vCPU harvests it and
 * nothing is lost. */
static void test_small_ring_fills_and_loses_nothing(void **unused)
{
	struct vm_config cfg = test_config(MEM_MIB, 1);
	struct vm *vm;

	(void)unused;
	cfg.dirty_backend = DIRTY_RING;
	cfg.dirty_ring_entries = 256;
	vm = test_vm_cfg(&cfg, "touch", true);
	test_wait_filled(vm);
	check_exact(vm, DIRTY_RING);
	assert_true(dirty_get_stats(vm->dirty).ring_full_exits > 0);
	vm_destroy(vm);
}

/* Under a running dirtier, every page whose generation moved between two
 * syncs is reported by the second. */
static void test_running_dirtier_loses_nothing(void **unused)
{
	struct vm *vm = test_vm(MEM_MIB, 2, "dirty:rate=max,write=byte", true);
	const struct ferry_params *p = vm_read_ptr(vm, FERRY_PARAMS_GPA, sizeof(*p));
	uint64_t wss = p->wl.wss_pages, ws_gfn = ferry_ws_gpa(wss) / FERRY_PAGE_SIZE;
	const uint32_t *table = vm_read_ptr(vm, FERRY_HEAP_GPA, wss * 4);
	uint32_t *gen = malloc(wss * 4);
	uint64_t *bits = new_bitmap(vm), moved = 0;

	(void)unused;
	test_wait_filled(vm);
	assert_int_equal(dirty_start(vm->dirty), 0);
	sync_fresh(vm, bits);
	for (int round = 0; round < 5; round++) {
		/* Snapshot generations, let the guest run, then sync while it runs. */
		memcpy(gen, table, wss * 4);
		time_sleep_ns(50 * NS_PER_MS);
		assert_int_equal(vm_pause(vm), 0);
		sync_fresh(vm, bits);
		for (uint64_t i = 0; i < wss; i++)
			if (table[i] != gen[i]) {
				moved++;
				if (!bitmap_test(bits, ws_gfn + i))
					fail_msg("page %llu changed but was not reported",
						 (unsigned long long)i);
			}
		vm_resume(vm);
	}
	assert_true(moved > 1000);
	free(gen);
	free(bits);
	vm_destroy(vm);
}

/* Stopping tracking (a failed migration does) ends syncs; starting again
 * begins with a full report. */
static void test_stop_and_restart(void **unused)
{
	struct vm *vm = test_vm(MEM_MIB, 1, "idle", true);
	uint64_t *bits = new_bitmap(vm);

	(void)unused;
	test_wait_filled(vm);
	assert_int_equal(dirty_start(vm->dirty), 0);
	assert_int_equal(sync_fresh(vm, bits), (int64_t)dirty_pages(vm->dirty));
	assert_true(sync_fresh(vm, bits) < 16);
	/* Starting again while on (a second migration) also reports all. */
	assert_int_equal(dirty_start(vm->dirty), 0);
	assert_int_equal(sync_fresh(vm, bits), (int64_t)dirty_pages(vm->dirty));
	dirty_stop(vm->dirty);
	assert_int_equal(dirty_sync(vm->dirty, bits), -EINVAL);
	assert_int_equal(dirty_start(vm->dirty), 0);
	assert_int_equal(sync_fresh(vm, bits), (int64_t)dirty_pages(vm->dirty));
	free(bits);
	vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_reports_exact_set),
		cmocka_unit_test(test_ring_reports_exact_set),
		cmocka_unit_test(test_small_ring_fills_and_loses_nothing),
		cmocka_unit_test(test_running_dirtier_loses_nothing),
		cmocka_unit_test(test_stop_and_restart),
	};
	int skip = kvm_or_skip();

	return skip ? skip : cmocka_run_group_tests(tests, NULL, NULL);
}
