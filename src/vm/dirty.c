#include "vm/dirty.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util/bitmap.h"
#include "util/page.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define DEFAULT_RING_ENTRIES 16384
/* KVM_CLEAR_DIRTY_LOG is issued per 64 MiB chunk that has dirty pages: it
 * bounds how long KVM holds the MMU lock, and skips clean chunks entirely. */
#define CLEAR_CHUNK_PAGES (64ull << 20 >> 12)

struct ring {
	struct kvm_dirty_gfn *gfns;
	uint32_t fetch;
	uint64_t harvested; /* entries taken from this vCPU's ring, in total */
};

struct dirty {
	struct vm *vm;
	enum dirty_backend backend;
	bool active;
	bool first_sync; /* next sync reports every page */
	bool initially_set;
	uint64_t npages;
	uint64_t *vmm;	   /* VMM writes, set atomically from any thread */
	uint64_t *pending; /* ring entries harvested between syncs */
	uint64_t *scratch; /* one slot's KVM_GET_DIRTY_LOG */
	uint32_t ring_entries;
	struct ring rings[VM_MAX_VCPUS];
	pthread_mutex_t lock; /* serialises harvests and syncs */
	struct dirty_stats stats;
};

const char *dirty_backend_name(const struct dirty *d)
{
	return d->backend == DIRTY_RING ? "ring" : "bitmap";
}

uint64_t dirty_pages(const struct dirty *d)
{
	return d->npages;
}

static int enable_cap(int vm_fd, uint32_t cap, uint64_t arg)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg } };

	return ioctl(vm_fd, KVM_ENABLE_CAP, &ec) < 0 ? -errno : 0;
}

static int setup_ring(struct dirty *d)
{
	int cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	int max_bytes = kvm_check_cap(d->vm->fd, cap);
	uint64_t bytes;

	if (max_bytes <= 0) {
		cap = KVM_CAP_DIRTY_LOG_RING;
		max_bytes = kvm_check_cap(d->vm->fd, cap);
	}
	if (max_bytes <= 0)
		return err_set(-ENOTSUP,
			       "this host's KVM has no dirty ring; use the bitmap backend");
	d->ring_entries = d->vm->cfg.dirty_ring_entries ?: DEFAULT_RING_ENTRIES;
	if (d->ring_entries & (d->ring_entries - 1))
		return err_set(-EINVAL, "dirty ring size %u is not a power of two",
			       d->ring_entries);
	bytes = (uint64_t)d->ring_entries * sizeof(struct kvm_dirty_gfn);
	if (bytes > (uint64_t)max_bytes)
		return err_set(-EINVAL, "dirty ring of %u entries exceeds the host's limit of %d",
			       d->ring_entries, max_bytes / (int)sizeof(struct kvm_dirty_gfn));
	if (enable_cap(d->vm->fd, (uint32_t)cap, bytes) < 0)
		return err_set(-errno, "cannot enable the dirty ring: %s", strerror(errno));
	return 0;
}

static int setup_bitmap(struct dirty *d)
{
	int caps = kvm_check_cap(d->vm->fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;

	if (!(caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		return err_set(-ENOTSUP, "this host's KVM lacks MANUAL_DIRTY_LOG_PROTECT2");
	want &= (uint64_t)caps;
	if (enable_cap(d->vm->fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, want) < 0)
		return err_set(-errno, "cannot enable manual dirty-log protection: %s",
			       strerror(errno));
	d->initially_set = want & KVM_DIRTY_LOG_INITIALLY_SET;
	return 0;
}

int dirty_create(struct vm *vm, struct dirty **out)
{
	struct dirty *d = calloc(1, sizeof(*d));
	uint64_t words = BITMAP_WORDS(vm->cfg.mem_bytes / FERRY_PAGE_SIZE);
	int rc;

	if (!d)
		return err_set(-ENOMEM, "out of memory");
	d->vm = vm;
	d->backend = vm->cfg.dirty_backend;
	d->npages = vm->cfg.mem_bytes / FERRY_PAGE_SIZE;
	pthread_mutex_init(&d->lock, NULL);
	d->vmm = calloc(words, 8);
	d->pending = calloc(words, 8);
	d->scratch = calloc(words, 8);
	if (!d->vmm || !d->pending || !d->scratch) {
		dirty_destroy(d);
		return err_set(-ENOMEM, "out of memory for dirty bitmaps");
	}
	rc = d->backend == DIRTY_RING ? setup_ring(d) : setup_bitmap(d);
	if (rc < 0) {
		dirty_destroy(d);
		return rc;
	}
	*out = d;
	return 0;
}

int dirty_attach_vcpu(struct dirty *d, struct vcpu *vcpu)
{
	size_t bytes = (size_t)d->ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;

	if (d->backend != DIRTY_RING)
		return 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd,
		 KVM_DIRTY_LOG_PAGE_OFFSET * FERRY_PAGE_SIZE);
	if (p == MAP_FAILED)
		return err_set(-errno, "cannot map the dirty ring of vCPU %u: %s", vcpu->index,
			       strerror(errno));
	d->rings[vcpu->index].gfns = p;
	return 0;
}

void dirty_destroy(struct dirty *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		if (d->rings[i].gfns)
			munmap(d->rings[i].gfns, d->ring_entries * sizeof(struct kvm_dirty_gfn));
	free(d->vmm);
	free(d->pending);
	free(d->scratch);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int set_slot_logging(struct dirty *d, bool on)
{
	struct guest_mem *mem = &d->vm->mem;

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = r->slot,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};

		if (ioctl(d->vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return err_set(-errno, "cannot %s dirty logging: %s",
				       on ? "enable" : "disable", strerror(errno));
	}
	return 0;
}

int dirty_start(struct dirty *d)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = d->active ? 0 : set_slot_logging(d, true);
	if (rc == 0) {
		/* Even if already on: whoever starts wants every page first. */
		d->active = true;
		d->first_sync = true;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void dirty_stop(struct dirty *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->active)
		set_slot_logging(d, false);
	d->active = false;
	pthread_mutex_unlock(&d->lock);
}

void dirty_mark(struct dirty *d, uint64_t gpa, uint64_t len)
{
	if (!len)
		return;
	for (uint64_t gfn = gpa / FERRY_PAGE_SIZE;
	     gfn <= (gpa + len - 1) / FERRY_PAGE_SIZE && gfn < d->npages; gfn++)
		bitmap_set_atomic(d->vmm, gfn);
}

static const struct mem_region *region_of_slot(const struct dirty *d, uint32_t slot)
{
	const struct guest_mem *mem = &d->vm->mem;

	for (unsigned i = 0; i < mem->nr_regions; i++)
		if (mem->regions[i].slot == slot)
			return &mem->regions[i];
	return NULL;
}

/* Move the published entries of one ring into pending and mark them for
 * reset. The caller holds d->lock and calls KVM_RESET_DIRTY_RINGS after. */
static uint64_t harvest_ring(struct dirty *d, struct ring *ring)
{
	uint64_t n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &ring->gfns[ring->fetch & (d->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		const struct mem_region *r;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		r = region_of_slot(d, e->slot & 0xffff);
		if (r && e->offset < r->size / FERRY_PAGE_SIZE)
			bitmap_set(d->pending, r->gpa / FERRY_PAGE_SIZE + e->offset);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		ring->fetch++;
		n++;
	}
	ring->harvested += n;
	return n;
}

static void reset_rings(struct dirty *d)
{
	if (ioctl(d->vm->fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		log_err("KVM_RESET_DIRTY_RINGS: %s", strerror(errno));
}

void dirty_ring_full(struct dirty *d, unsigned vcpu_index)
{
	pthread_mutex_lock(&d->lock);
	harvest_ring(d, &d->rings[vcpu_index]);
	reset_rings(d);
	d->stats.ring_full_exits++;
	pthread_mutex_unlock(&d->lock);
}

static int sync_ring(struct dirty *d, uint64_t *out)
{
	for (unsigned i = 0; i < d->vm->nr_vcpus; i++)
		harvest_ring(d, &d->rings[i]);
	/* Reset re-protects the harvested pages before anyone reads them, so a
	 * write after this point is caught by the next sync. */
	reset_rings(d);
	bitmap_or_take(out, d->pending, d->npages);
	return 0;
}

/* Re-protect the pages in bits (one word per 64 pages) that KVM reported. */
static int clear_region(struct dirty *d, const struct mem_region *r, uint64_t *bits)
{
	uint64_t pages = r->size / FERRY_PAGE_SIZE;

	for (uint64_t first = 0; first < pages; first += CLEAR_CHUNK_PAGES) {
		uint64_t n = pages - first < CLEAR_CHUNK_PAGES ? pages - first : CLEAR_CHUNK_PAGES;
		struct kvm_clear_dirty_log clear = {
			.slot = r->slot,
			.num_pages = (uint32_t)n,
			.first_page = first,
			.dirty_bitmap = bits + first / 64,
		};
		bool any = false;

		for (uint64_t w = 0; w < BITMAP_WORDS(n) && !any; w++)
			any = bits[first / 64 + w] != 0;
		if (any && ioctl(d->vm->fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			return err_set(-errno, "KVM_CLEAR_DIRTY_LOG failed: %s", strerror(errno));
	}
	return 0;
}

static int sync_bitmap(struct dirty *d, uint64_t *out)
{
	struct guest_mem *mem = &d->vm->mem;

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];
		uint64_t pages = r->size / FERRY_PAGE_SIZE, base = r->gpa / FERRY_PAGE_SIZE;
		struct kvm_dirty_log log = { .slot = r->slot, .dirty_bitmap = d->scratch };
		int rc;

		if (ioctl(d->vm->fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return err_set(-errno, "KVM_GET_DIRTY_LOG failed: %s", strerror(errno));
		/* Clear before the caller reads the pages: a write after the
		 * clear faults and is reported by the next sync. */
		rc = clear_region(d, r, d->scratch);
		if (rc < 0)
			return rc;
		/* Regions start on a 2 MiB boundary, so base is word aligned. */
		for (uint64_t w = 0; w < BITMAP_WORDS(pages); w++)
			out[base / 64 + w] |= d->scratch[w];
	}
	return 0;
}

static void set_all(uint64_t *out, uint64_t npages)
{
	memset(out, 0xff, npages / 64 * 8);
	if (npages % 64)
		out[npages / 64] |= (1ull << (npages % 64)) - 1;
}

int64_t dirty_sync(struct dirty *d, uint64_t *out)
{
	uint64_t start = time_now_ns();
	int64_t count;
	int rc;

	pthread_mutex_lock(&d->lock);
	if (!d->active) {
		pthread_mutex_unlock(&d->lock);
		return err_set(-EINVAL, "dirty tracking is not started");
	}
	rc = d->backend == DIRTY_RING ? sync_ring(d, out) : sync_bitmap(d, out);
	if (rc == 0) {
		bitmap_or_take(out, d->vmm, d->npages);
		if (d->first_sync)
			set_all(out, d->npages);
		d->first_sync = false;
	}
	count = rc < 0 ? rc : (int64_t)bitmap_count(out, d->npages);
	d->stats.syncs++;
	d->stats.last_sync_ns = time_now_ns() - start;
	d->stats.last_dirty = rc < 0 ? 0 : (uint64_t)count;
	pthread_mutex_unlock(&d->lock);
	return count;
}

bool dirty_per_vcpu(const struct dirty *d)
{
	return d->backend == DIRTY_RING;
}

uint64_t dirty_vcpu_pages(struct dirty *d, unsigned vcpu_index)
{
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->backend == DIRTY_RING && vcpu_index < VM_MAX_VCPUS ? d->rings[vcpu_index].harvested
								  : 0;
	pthread_mutex_unlock(&d->lock);
	return n;
}

struct dirty_stats dirty_get_stats(struct dirty *d)
{
	struct dirty_stats s;

	pthread_mutex_lock(&d->lock);
	s = d->stats;
	pthread_mutex_unlock(&d->lock);
	return s;
}
