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

/* The stalls the guest felt (guest/abi.h, struct ferry_vcpu_stalls): gaps of
 * over GUEST_STALL_MIN_US between two heartbeats of a vCPU that meant to
 * run. A vCPU asleep on purpose feels none. */
#define GUEST_STALL_MIN_US 1000

/* Start every vCPU's longest stall anew (through guest RAM: dirty-tracked,
 * so it reaches a destination with the rest). */
void guest_stalls_reset(struct vm *vm);
/* vCPU i's last heartbeat if it is running (or paused while running), 0 if
 * it is asleep on purpose. */
uint64_t guest_running_beat(const struct vm *vm, unsigned i);
/* Whether vCPU i has beaten well after beat (from guest_running_beat); if
 * so, *ms is the stall that began then, or 0 if it was shorter than
 * GUEST_STALL_MIN_US. */
bool guest_stall_since(const struct vm *vm, unsigned i, uint64_t beat, double *ms);
/* The longest stall of any vCPU since guest_stalls_reset. */
double guest_stall_max_ms(const struct vm *vm);
/* The same of vCPU i. */
double guest_vcpu_stall_max_ms(const struct vm *vm, unsigned i);

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
