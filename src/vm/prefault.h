/* Faulting in guest memory in the background. First touch is slow on some
 * hosts (0.3-3 s per GiB on kvm_pvm); a migration destination whose memory
 * was not made ready overlaps it with the transfer: at idle priority, and
 * only while the pages stop arriving (between batches on a slow link, before
 * the first), so that it never takes CPU or the host's fault handling from
 * the receivers, which fault their own pages in anyway. It stops before the
 * switchover so that it never competes with the downtime. Pages it has not
 * reached fault in on demand, as in any fresh VM. */
#ifndef FERRY_VM_PREFAULT_H
#define FERRY_VM_PREFAULT_H

#include <stdint.h>

struct guest_mem;
struct prefault;

/* What the prefault yields to: a count that grows while pages arrive. */
struct prefault_yield {
	uint64_t (*arrived)(void *opaque);
	void *opaque;
};

/* Start faulting in mem, in 2 MiB steps, each after 1 ms in which y's
 * count did not grow. Returns 0 or -errno with err_msg(). */
int prefault_start(struct guest_mem *mem, struct prefault_yield y, struct prefault **out);
/* Stop after the current step and wait; returns the share of memory done
 * (0 to 1). NULL is fine (returns 0). */
double prefault_stop(struct prefault *p);

#endif
