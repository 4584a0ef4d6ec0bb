/* The built-in guest as the VMM sees it while it runs: the progress
 * counters each vCPU publishes in its status slot (read without exits), and
 * the full self-check the VMM can ask of it. The guest ABI stays behind
 * these functions (guest/abi.h). */
#ifndef FERRY_VM_GUEST_STATUS_H
#define FERRY_VM_GUEST_STATUS_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

struct guest_vcpu_counters {
	uint64_t pages_written; /* page writes since start */
	uint64_t passes;	/* passes over its share of the working set */
	uint64_t verify_errors; /* stale or torn pages it saw */
	uint64_t work;		/* compute loops (a vCPU that does not dirty) */
	uint64_t heartbeat_tsc; /* the last rdtsc of its main loop */
};

/* vCPU i's counters (i < vm->nr_vcpus). */
struct guest_vcpu_counters guest_vcpu_counters(const struct vm *vm, unsigned i);
/* Page writes of every vCPU, summed. */
uint64_t guest_pages_written(const struct vm *vm);

/* A full self-check: every vCPU reads each page of its share. */
struct guest_check {
	uint64_t request;
	uint64_t errors, pages; /* once done, summed over the vCPUs */
};

/* Ask the guest for a check now (the request goes through guest RAM, so it
 * is dirty-tracked, and sleeping vCPUs are woken). */
void guest_check_start(struct vm *vm, struct guest_check *c);
/* True once every vCPU has finished c's request; then c holds the result. */
bool guest_check_done(const struct vm *vm, struct guest_check *c);

#endif
