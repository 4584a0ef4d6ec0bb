/* A vCPU: its KVM fd and shared run area, its thread and run loop. The loop
 * handles every exit: port I/O goes to vm/port.c; anything fatal (shutdown,
 * failed entry, internal error, unexpected MMIO) logs the registers and stops
 * the VM rather than spinning. */
#ifndef FERRY_VM_VCPU_H
#define FERRY_VM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	char console[128]; /* console bytes until the next newline */
	unsigned console_len;
	unsigned throttle_pct; /* share of time to spend asleep (atomic; vm/throttle.c) */
	uint64_t ran_since_ns; /* end of the last throttle sleep (vCPU thread only) */
	uint64_t throttled_ns; /* slept for the throttle, in total (atomic) */
	uint64_t slept_ns;     /* asleep in the guest's sleep call, in total (atomic) */
	int tid;	       /* its thread's id, once it runs (atomic) */
};

int vcpu_create(struct vm *vm, unsigned index, struct vcpu **out);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu);
/* Make the vCPU leave KVM_RUN soon (immediate_exit + signal). */
void vcpu_kick(struct vcpu *vcpu);
/* Set the share of time the vCPU sleeps outside the guest; it pays on each
 * kick, in proportion to how long it ran since the last payment. */
void vcpu_throttle(struct vcpu *vcpu, unsigned pct);

/* Whether the vCPU's thread runs (or ran); safe from any thread. */
static inline bool vcpu_started(const struct vcpu *vcpu)
{
	return __atomic_load_n(&vcpu->thread_started, __ATOMIC_ACQUIRE);
}

#endif
