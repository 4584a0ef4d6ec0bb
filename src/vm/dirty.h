/* Dirty page tracking: which guest pages changed since the last sync.
 *
 * Two KVM backends, chosen when the VM is created: the dirty bitmap with
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (+ initially-set, chunked clear), or the
 * per-vCPU dirty ring. Either way a VMM-side bitmap is ORed in, because KVM
 * does not see writes the VMM itself makes into guest RAM (vm_write()).
 *
 * Bitmaps are indexed by guest frame number (gfn = gpa / 4096) over all of
 * guest RAM. The first sync after dirty_start() reports every page, for both
 * backends; each later one reports the pages written since the one before. */
#ifndef FERRY_VM_DIRTY_H
#define FERRY_VM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct dirty;

struct dirty_stats {
	uint64_t syncs;
	uint64_t last_sync_ns; /* duration of the last dirty_sync */
	uint64_t last_dirty;   /* pages it reported */
	uint64_t ring_full_exits;
};

/* Called by vm_create before any vCPU exists (the ring must be enabled first). */
int dirty_create(struct vm *vm, struct dirty **out);
int dirty_attach_vcpu(struct dirty *d, struct vcpu *vcpu);
void dirty_destroy(struct dirty *d);

int dirty_start(struct dirty *d);
void dirty_stop(struct dirty *d);
/* OR the pages dirtied since the previous sync into out (dirty_pages() bits)
 * and re-arm tracking for them. Returns the number of bits now set in out,
 * or -errno. */
int64_t dirty_sync(struct dirty *d, uint64_t *out);
uint64_t dirty_pages(const struct dirty *d);
const char *dirty_backend_name(const struct dirty *d);
struct dirty_stats dirty_get_stats(struct dirty *d);

/* Per-vCPU counts exist with the ring backend only: the pages each vCPU
 * dirtied first since a sync, summed over all syncs (a count, not a set). */
bool dirty_per_vcpu(const struct dirty *d);
uint64_t dirty_vcpu_pages(struct dirty *d, unsigned vcpu_index);

/* The VMM wrote [gpa, gpa + len). Safe from any thread. */
void dirty_mark(struct dirty *d, uint64_t gpa, uint64_t len);
/* A vCPU's ring is full (KVM_EXIT_DIRTY_RING_FULL): harvest it. */
void dirty_ring_full(struct dirty *d, unsigned vcpu_index);

#endif
