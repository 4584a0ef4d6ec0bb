/* Downtime as the guest feels it: the gap between the last heartbeat of a
 * running vCPU before the source paused it and its first beat here, measured
 * by the guest itself (vm/guest_status.h), and the longest stall any vCPU
 * felt since the migration began (throttling shows up there). The VMM's own
 * pause-to-resume figure misses the pause's start and the vCPUs' first
 * steps here. */
#ifndef FERRY_MIGRATION_RECV_FELT_H
#define FERRY_MIGRATION_RECV_FELT_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/vm.h"

struct felt {
	bool known;	     /* a vCPU that was running beat here in time */
	double gap_ms;	     /* the longest gap over those vCPUs (0: under GUEST_STALL_MIN_US) */
	double stall_max_ms; /* the longest stall of any vCPU during the migration */
	bool stall_known;    /* stall_max_ms was read (post-copy: without a gap) */
};

/* Before the guest starts here: each vCPU's last beat if it was running. */
void felt_before(const struct vm *vm, uint64_t beats[VM_MAX_VCPUS]);
/* After it started: wait (at most timeout_ms) for the vCPUs that were
 * running to beat, and say what they felt. */
struct felt felt_after(const struct vm *vm, const uint64_t beats[VM_MAX_VCPUS], int timeout_ms);

#endif
