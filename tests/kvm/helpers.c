#include "guest/abi.h"
#include "helpers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/time.h"
#include "vm/loader.h"
#include "vm/workload.h"

int kvm_or_skip(void)
{
	if (kvm_available())
		return 0;
	printf("SKIP: /dev/kvm is not available on this machine\n");
	return TEST_SKIP;
}

struct vm_config test_config(uint64_t mem_mib, unsigned vcpus)
{
	return (struct vm_config){ .mem_bytes = mem_mib << 20, .vcpus = vcpus };
}

struct vm *test_vm(uint64_t mem_mib, unsigned vcpus, const char *spec, bool start)
{
	struct vm_config cfg = test_config(mem_mib, vcpus);

	return test_vm_cfg(&cfg, spec, start);
}

struct vm *test_vm_cfg(const struct vm_config *cfg, const char *spec, bool start)
{
	struct ferry_workload_args args;
	struct vm *vm;

	if (workload_parse(spec, cfg->mem_bytes, &args) < 0)
		fail_msg("workload %s: %s", spec, err_msg());
	if (vm_create(cfg, &vm) < 0)
		fail_msg("vm_create: %s", err_msg());
	if (loader_load(vm, guest_image, guest_image_len, &args) < 0)
		fail_msg("loader_load: %s", err_msg());
	if (start)
		assert_int_equal(vm_start(vm), 0);
	return vm;
}

const struct ferry_vcpu_status *test_status(struct vm *vm, unsigned vcpu)
{
	const struct ferry_vcpu_status *st = vm_read_ptr(vm, FERRY_STATUS_GPA, 2 * FERRY_PAGE_SIZE);

	return &st[vcpu];
}

uint64_t test_pages_written(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += test_status(vm, i)->pages_written;
	return n;
}

static bool all_filled(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (!test_status(vm, i)->filled)
			return false;
	return true;
}

void test_wait_filled(struct vm *vm)
{
	uint64_t deadline = time_now_ns() + 60 * NS_PER_S;

	while (!all_filled(vm)) {
		assert_false(vm->stop_req);
		assert_true(time_now_ns() < deadline);
		time_sleep_ns(5 * NS_PER_MS);
	}
}

uint64_t test_sweep(struct vm *vm)
{
	const struct ferry_control *c = vm_read_ptr(vm, FERRY_CONTROL_GPA, sizeof(*c));
	uint64_t req = c->sweep_req + 1, errors = 0;
	uint64_t deadline = time_now_ns() + 60 * NS_PER_S;

	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, sweep_req), &req,
		 sizeof(req));
	vm_wake(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		while (test_status(vm, i)->sweep_done != req) {
			assert_false(vm->stop_req);
			assert_true(time_now_ns() < deadline);
			time_sleep_ns(2 * NS_PER_MS);
		}
		errors += test_status(vm, i)->sweep_errors;
	}
	return errors;
}
