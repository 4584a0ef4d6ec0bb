#include "vm/port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "guest/abi.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/* A sleep call longer than this returns early; the guest sleeps again. */
#define MAX_SLEEP_US 10000000

static void console_byte(struct vcpu *vcpu, char c)
{
	if (c != '\n' && vcpu->console_len < sizeof(vcpu->console) - 1) {
		vcpu->console[vcpu->console_len++] = c;
		return;
	}
	vcpu->console[vcpu->console_len] = '\0';
	log_info("guest[%u]: %s", vcpu->index, vcpu->console);
	vcpu->console_len = 0;
	if (c != '\n')
		console_byte(vcpu, c);
}

static const volatile uint64_t *call_args(struct vcpu *vcpu)
{
	const struct ferry_vcpu_status *st =
		vm_read_ptr(vcpu->vm, FERRY_STATUS_GPA + vcpu->index * sizeof(*st), sizeof(*st));

	return st->args;
}

static const char *vector_name(uint64_t v)
{
	static const char *const names[] = {
		"divide error",
		"debug",
		"NMI",
		"breakpoint",
		"overflow",
		"bound range",
		"invalid opcode",
		"device not available",
		"double fault",
		"coprocessor",
		"invalid TSS",
		"segment not present",
		"stack fault",
		"general protection",
		"page fault",
		"reserved",
		"x87 error",
		"alignment check",
		"machine check",
		"SIMD error",
		"virtualization",
		"control protection",
	};

	return v < sizeof(names) / sizeof(names[0]) ? names[v] : "reserved";
}

/* The guest's exception stub called: say which exception, where (its
 * registers, guest/abi.h), and stop the VM. */
static int guest_fault(struct vcpu *vcpu)
{
	struct kvm_regs r;
	char reason[200];

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0)
		snprintf(reason, sizeof(reason),
			 "vCPU %u took an exception (its registers are unavailable: %s)",
			 vcpu->index, strerror(errno));
	else
		snprintf(reason, sizeof(reason),
			 "vCPU %u took an exception: %s (vector %llu, error code %#llx) at rip "
			 "%#llx, rsp %#llx",
			 vcpu->index, vector_name(r.rsi), r.rsi, r.rdx, r.rcx, r.r8);
	vm_stop(vcpu->vm, true, 0, reason);
	return -1;
}

static int ferry_call(struct vcpu *vcpu, uint32_t nr)
{
	const volatile uint64_t *a = call_args(vcpu);
	char reason[160];

	switch (nr) {
	case FERRY_CALL_SLEEP: {
		uint64_t start = time_now_ns();

		vm_sleep_vcpu(vcpu->vm, a[0] > MAX_SLEEP_US ? MAX_SLEEP_US : a[0]);
		__atomic_add_fetch(&vcpu->slept_ns, time_now_ns() - start, __ATOMIC_RELAXED);
		return 0;
	}
	case FERRY_CALL_EXIT:
		snprintf(reason, sizeof(reason), "guest exited with code %llu",
			 (unsigned long long)a[0]);
		vm_stop(vcpu->vm, a[0] != 0, (int)a[0], reason);
		return -1;
	case FERRY_CALL_VERIFY:
		__atomic_fetch_add(&vcpu->vm->verify_reports, 1, __ATOMIC_RELAXED);
		log_err("guest self-check: vCPU %u found page %llu stale or torn (generation %llu expected, %llu found)",
			vcpu->index, (unsigned long long)a[0], (unsigned long long)a[1],
			(unsigned long long)a[2]);
		return 0;
	case FERRY_CALL_PANIC:
		snprintf(reason, sizeof(reason), "guest panicked on vCPU %u with reason %llu",
			 vcpu->index, (unsigned long long)a[0]);
		vm_stop(vcpu->vm, true, 0, reason);
		return -1;
	case FERRY_CALL_FAULT:
		return guest_fault(vcpu);
	default:
		log_warn("vCPU %u: unknown ferry call %u ignored", vcpu->index, nr);
		return 0;
	}
}

int port_handle(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t value = 0;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		/* Nothing is readable; like an empty ISA bus, reads give all ones. */
		memset(data, 0xff, (size_t)run->io.size * run->io.count);
		return 0;
	}
	memcpy(&value, data, run->io.size > 4 ? 4 : run->io.size);
	switch (run->io.port) {
	case FERRY_PORT_CONSOLE:
		for (uint32_t i = 0; i < run->io.count; i++)
			console_byte(vcpu, (char)data[i * run->io.size]);
		return 0;
	case FERRY_PORT_CALL:
		return ferry_call(vcpu, value);
	default:
		log_debug("vCPU %u: write of %#x to unknown port %#x ignored", vcpu->index, value,
			  run->io.port);
		return 0;
	}
}
