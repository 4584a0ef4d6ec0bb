/* Faulting in guest memory in the background. First touch is slow on some
 * hosts (0.3-3 s per GiB on kvm_pvm); a migration destination whose memory
 * was not made ready overlaps it with the transfer, but only while its
 * receivers wait for the link: they fault their own pages in anyway, and
 * on this host faults taken side by side slow each other down (a PVM
 * guest's first touch is the outer host's work too). It runs at idle
 * priority and stops before the switchover, so that it never competes
 * with the downtime. Pages it has not reached fault in on demand, as in
 * any fresh VM. Before each MEM_CLAIM_STEP it checks that the host still
 * has room (mem_claim_check); if not, it stops and says so, and the
 * migration can be refused before the guest runs here. */
#ifndef FERRY_VM_PREFAULT_H
#define FERRY_VM_PREFAULT_H

#include <stdbool.h>

struct guest_mem;
struct prefault;

/* What the prefault yields to: busy() is true while the receivers work.
 * ran_short (may be NULL) is called from its thread if the host has no
 * room left for guest memory. */
struct prefault_yield {
	bool (*busy)(void *opaque);
	void *opaque;
	void (*ran_short)(void *opaque);
};

/* Start faulting in mem, 256 KiB at a time, each step once y.busy() is
 * false. Returns 0 or -errno with err_msg(). */
int prefault_start(struct guest_mem *mem, struct prefault_yield y, struct prefault **out);
/* The share of memory faulted in so far (0 to 1). */
double prefault_progress(const struct prefault *p);
/* -ENOMEM with its sentence if it stopped because the host ran short of
 * memory, else 0. NULL is fine. */
int prefault_failed(const struct prefault *p);
/* Stop after the current step and wait; *share (may be NULL): the share of
 * memory done (0 to 1). Returns prefault_failed's answer. NULL is fine. */
int prefault_stop(struct prefault *p, double *share);

#endif
