/* Machine state: save a running VM, restore into a fresh VM, save again,
 * compare field by field; the restored guest must keep running correctly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/state.h"
#include "vm/vcpu.h"

#include <errno.h>
#include <sys/ioctl.h>

#define MEM_MIB 64

static void copy_ram(struct vm *dst, const struct vm *src)
{
	memcpy(dst->mem.regions[0].host, src->mem.regions[0].host, src->mem.size);
}

#define MSR_KERNEL_GS_BASE 0xc0000102

/* A value a fresh VM cannot have by accident, so the diff proves MSRs moved. */
static void set_marker_msr(struct vm *vm, unsigned vcpu, uint64_t value)
{
	union {
		struct kvm_msrs hdr;
		uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m = { .hdr.nmsrs = 1 };

	m.hdr.entries[0].index = MSR_KERNEL_GS_BASE;
	m.hdr.entries[0].data = value;
	assert_int_equal(ioctl(vm->vcpus[vcpu]->fd, KVM_SET_MSRS, &m), 1);
}

static void test_roundtrip_keeps_guest_running(void **unused)
{
	struct vm *a = test_vm(MEM_MIB, 2, "dirty:rate=20000pps,write=word", true);
	struct vm *b = test_vm(MEM_MIB, 2, "dirty:rate=20000pps,write=word", false);
	uint8_t *blob1, *blob2;
	size_t len1, len2;
	char diff[1024];
	uint64_t before, tsc_before;

	(void)unused;
	test_wait_filled(a);
	time_sleep_ns(200 * NS_PER_MS);
	assert_int_equal(vm_pause(a), 0);
	before = test_pages_written(a);
	set_marker_msr(a, 0, 0x1234567000);
	set_marker_msr(a, 1, 0x7654321000);
	tsc_before = test_status(a, 0)->heartbeat_tsc;
	if (state_save(a, &blob1, &len1) < 0)
		fail_msg("save: %s", err_msg());
	copy_ram(b, a);
	vm_destroy(a);

	if (state_restore(b, blob1, len1) < 0)
		fail_msg("restore: %s", err_msg());
	assert_int_equal(state_save(b, &blob2, &len2), 0);
	int n = state_diff(blob1, len1, blob2, len2, diff, sizeof(diff));
	if (n != 0)
		fail_msg("%d fields differ after restore: %s", n, diff);

	assert_int_equal(vm_start(b), 0);
	time_sleep_ns(500 * NS_PER_MS);
	assert_false(b->stop_req);
	assert_true(test_pages_written(b) > before + 1000);
	/* Guest time continues: no jump backwards. */
	assert_true(test_status(b, 0)->heartbeat_tsc > tsc_before);
	assert_int_equal(test_sweep(b), 0);
	assert_int_equal(b->verify_reports, 0);
	vm_destroy(b);
	free(blob1);
	free(blob2);
}

static void test_diff_sees_a_changed_register(void **unused)
{
	struct vm *a = test_vm(MEM_MIB, 1, "idle", false);
	uint8_t *blob1, *blob2;
	size_t len1, len2;
	char diff[256];

	(void)unused;
	assert_int_equal(state_save(a, &blob1, &len1), 0);
	struct kvm_regs regs;
	assert_int_equal(ioctl(a->vcpus[0]->fd, KVM_GET_REGS, &regs), 0);
	regs.rbx ^= 1;
	assert_int_equal(ioctl(a->vcpus[0]->fd, KVM_SET_REGS, &regs), 0);
	assert_int_equal(state_save(a, &blob2, &len2), 0);
	assert_int_equal(state_diff(blob1, len1, blob2, len2, diff, sizeof(diff)), 1);
	assert_non_null(strstr(diff, "rbx"));
	vm_destroy(a);
	free(blob1);
	free(blob2);
}

/* Every truncation (inside padding too) and a flipped length must be
 * refused without touching the VM. */
static void test_restore_rejects_malformed_blobs(void **unused)
{
	struct vm *a = test_vm(MEM_MIB, 1, "idle", false);
	uint8_t *blob;
	size_t len;

	(void)unused;
	assert_int_equal(state_save(a, &blob, &len), 0);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(state_restore(a, blob, cut), -EINVAL);
	((struct state_section *)(blob + sizeof(struct state_header)))->length += 8;
	assert_int_equal(state_restore(a, blob, len), -EINVAL);
	assert_non_null(strstr(err_msg(), "bad length"));
	memcpy(blob, "NOTFERRY", 8);
	assert_int_equal(state_restore(a, blob, len), -EINVAL);
	assert_non_null(strstr(err_msg(), "magic"));
	vm_destroy(a);
	free(blob);
}

static void test_restore_refuses_other_vcpu_count(void **unused)
{
	struct vm *a = test_vm(MEM_MIB, 2, "idle", false);
	struct vm *b = test_vm(MEM_MIB, 1, "idle", false);
	uint8_t *blob;
	size_t len;

	(void)unused;
	assert_int_equal(state_save(a, &blob, &len), 0);
	assert_int_equal(state_restore(b, blob, len), -EINVAL);
	assert_non_null(strstr(err_msg(), "2 vCPUs"));
	vm_destroy(a);
	vm_destroy(b);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_keeps_guest_running),
		cmocka_unit_test(test_diff_sees_a_changed_register),
		cmocka_unit_test(test_restore_rejects_malformed_blobs),
		cmocka_unit_test(test_restore_refuses_other_vcpu_count),
	};
	int skip = kvm_or_skip();

	return skip ? skip : cmocka_run_group_tests(tests, NULL, NULL);
}
