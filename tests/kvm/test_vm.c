/* The VM and its vCPUs: every vCPU runs the guest, pause really stops them
 * and resume restarts them, and the guest's exits and faults stop the VM with
 * a clear reason instead of spinning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/loader.h"

static void wait_progress(struct vm *vm, unsigned vcpu, uint64_t beyond)
{
	uint64_t deadline = time_now_ns() + 30 * NS_PER_S;

	while (test_status(vm, vcpu)->pages_written <= beyond) {
		assert_false(vm->stop_req);
		assert_true(time_now_ns() < deadline);
		time_sleep_ns(NS_PER_MS);
	}
}

static void test_every_vcpu_runs(void **unused)
{
	struct vm *vm = test_vm(64, 4, "dirty:rate=max,write=word", true);

	(void)unused;
	for (unsigned i = 0; i < 4; i++)
		wait_progress(vm, i, 1000);
	assert_int_equal(vm->state, VM_RUNNING);
	vm_destroy(vm);
}

static void pause_resume(unsigned vcpus, const char *spec)
{
	struct vm *vm = test_vm(64, vcpus, spec, true);
	uint64_t frozen;

	test_wait_filled(vm);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vm_pause(vm), 0);
		assert_int_equal(vm->state, VM_PAUSED);
		assert_int_equal(vm->parked, vcpus);
		frozen = test_pages_written(vm);
		time_sleep_ns(100 * NS_PER_MS);
		assert_int_equal(test_pages_written(vm), frozen);
		vm_resume(vm);
		assert_int_equal(vm->state, VM_RUNNING);
		for (unsigned v = 0; v < vcpus; v++)
			wait_progress(vm, v, test_status(vm, v)->pages_written);
	}
	vm_destroy(vm);
}

static void test_pause_busy_vcpus(void **unused)
{
	(void)unused;
	pause_resume(2, "dirty:rate=max");
	pause_resume(8, "dirty:rate=max,write=byte");
}

/* A paced guest spends most of its time in the sleep call: pause must end
 * the sleep rather than wait for it. */
static void test_pause_sleeping_vcpus(void **unused)
{
	struct vm *vm = test_vm(64, 2, "dirty:rate=2000pps", true);

	(void)unused;
	test_wait_filled(vm);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(vm_pause(vm), 0);
		assert_true(vm->last_pause_ns < 500 * NS_PER_MS);
		vm_resume(vm);
	}
	vm_destroy(vm);
}

static void test_memfd_backend_runs(void **unused)
{
	struct vm_config cfg = test_config(64, 2);
	struct vm *vm;

	(void)unused;
	cfg.mem_backend = MEM_MEMFD;
	cfg.prealloc = true;
	vm = test_vm_cfg(&cfg, "dirty:rate=max", true);
	assert_true(vm->mem.memfd >= 0);
	test_wait_filled(vm);
	wait_progress(vm, 1, test_status(vm, 1)->pages_written);
	assert_int_equal(test_sweep(vm), 0);
	vm_destroy(vm);
}

/* Replace the guest's first instructions with code, before it starts. */
static struct vm *vm_running_code(const uint8_t *code, size_t len, uint64_t arg0)
{
	struct vm *vm = test_vm(16, 1, "idle", false);
	uint64_t entry;

	assert_int_equal(loader_check_elf(guest_image, guest_image_len, &entry), 0);
	assert_int_equal(vm_write(vm, entry, code, len), 0);
	assert_int_equal(
		vm_write(vm, FERRY_STATUS_GPA + offsetof(struct ferry_vcpu_status, args), &arg0, 8),
		0);
	assert_int_equal(vm_start(vm), 0);
	assert_true(vm_wait_stopped(vm, 10000));
	return vm;
}

static void test_guest_exit_code(void **unused)
{
	/* mov eax, FERRY_CALL_EXIT; out 0xf0, eax; jmp $ */
	static const uint8_t code[] = { 0xb8, 2, 0, 0, 0, 0xe7, 0xf0, 0xeb, 0xfe };
	struct vm *vm = vm_running_code(code, sizeof(code), 0);

	(void)unused;
	assert_false(vm->failed);
	assert_int_equal(vm->exit_code, 0);
	assert_non_null(strstr(vm->stop_reason, "exited with code 0"));
	vm_destroy(vm);

	vm = vm_running_code(code, sizeof(code), 3);
	assert_true(vm->failed);
	assert_int_equal(vm->exit_code, 3);
	vm_destroy(vm);
}

/* An exception stops the VM with its name and where (the guest's own
 * handlers, guest/abi.h): an invalid opcode, a page fault, a double fault
 * (a page fault whose frame cannot be pushed), and hlt, which a ring-3
 * guest may not run. */
static void test_guest_fault_stops_vm(void **unused)
{
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	/* movabs rax, 16 MiB (past a 16 MiB guest's memory); jmp rax */
	static const uint8_t jump_out[] = { 0x48, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xe0 };
	/* movabs rsp, 32 MiB; push rax: the page fault cannot push its frame */
	static const uint8_t lose_stack[] = { 0x48, 0xbc, 0, 0, 0, 2, 0, 0, 0, 0, 0x50 };
	static const uint8_t hlt[] = { 0xf4 };
	struct vm *vm = vm_running_code(ud2, sizeof(ud2), 0);
	char where[64];
	uint64_t entry;

	(void)unused;
	assert_int_equal(loader_check_elf(guest_image, guest_image_len, &entry), 0);
	snprintf(where, sizeof(where), "at rip %#llx,", (unsigned long long)entry);
	assert_true(vm->failed);
	assert_non_null(
		strstr(vm->stop_reason, "vCPU 0 took an exception: invalid opcode (vector 6"));
	assert_non_null(strstr(vm->stop_reason, where));
	vm_destroy(vm);
	vm = vm_running_code(jump_out, sizeof(jump_out), 0);
	assert_true(vm->failed);
	/* not present, user, instruction fetch */
	assert_non_null(strstr(vm->stop_reason,
			       "page fault (vector 14, error code 0x14) at rip 0x1000000,"));
	vm_destroy(vm);
	vm = vm_running_code(lose_stack, sizeof(lose_stack), 0);
	assert_true(vm->failed);
	assert_non_null(strstr(vm->stop_reason, "double fault (vector 8"));
	vm_destroy(vm);
	vm = vm_running_code(hlt, sizeof(hlt), 0);
	assert_true(vm->failed);
	assert_non_null(strstr(vm->stop_reason, "general protection (vector 13"));
	vm_destroy(vm);
}

/* A vCPU that shuts down (its IDT wiped: an exception has nowhere to go)
 * is told apart from one that lost its way with its memory in place:
 * what ferry built is compared with what the guest has. */
static void test_shutdown_checks_what_was_built(void **unused)
{
	static const uint8_t ud2[] = { 0x0f, 0x0b };
	static const uint8_t zero[FERRY_PAGE_SIZE];
	struct vm *vm = test_vm(16, 1, "idle", false);
	uint64_t entry;

	(void)unused;
	assert_int_equal(loader_check_intact(vm), 0);
	assert_int_equal(loader_check_elf(guest_image, guest_image_len, &entry), 0);
	assert_int_equal(vm_write(vm, FERRY_IDT_GPA, zero, sizeof(zero)), 0);
	assert_int_equal(vm_write(vm, entry, ud2, sizeof(ud2)), 0);
	assert_int_equal(vm_start(vm), 0);
	assert_true(vm_wait_stopped(vm, 10000));
	assert_true(vm_get_status(vm).shut_down);
	assert_int_equal(loader_check_intact(vm), -EIO);
	/* gate 0's first byte, the stub's address's low byte, is 0 too */
	assert_non_null(strstr(err_msg(), "IDT differs from what ferry built at 0xb001"));
	vm_destroy(vm);
}

static void test_bad_config_is_refused(void **unused)
{
	struct vm_config cfg = test_config(64, 0);
	struct vm *vm;

	(void)unused;
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
	cfg = test_config(64, VM_MAX_VCPUS + 1);
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
	cfg = test_config(8, 1);
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
	cfg = test_config(64, 1);
	cfg.dirty_backend = DIRTY_RING;
	cfg.dirty_ring_entries = 1000;
	assert_int_equal(vm_create(&cfg, &vm), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_vcpu_runs),
		cmocka_unit_test(test_pause_busy_vcpus),
		cmocka_unit_test(test_pause_sleeping_vcpus),
		cmocka_unit_test(test_memfd_backend_runs),
		cmocka_unit_test(test_guest_exit_code),
		cmocka_unit_test(test_guest_fault_stops_vm),
		cmocka_unit_test(test_shutdown_checks_what_was_built),
		cmocka_unit_test(test_bad_config_is_refused),
	};
	int skip = kvm_or_skip();

	return skip ? skip : cmocka_run_group_tests(tests, NULL, NULL);
}
