/* Guest RAM: host mappings of guest-physical regions, one KVM memslot each.
 * Anonymous private memory by default; memfd-backed shared memory as an
 * option (a second process can map the same pages, for local migration);
 * 2 MiB huge pages from the host's reserved pool (hugetlb memfd), whose
 * first touch costs a fraction of 4 KiB pages'.
 *
 * A mapping can be lent: a destination maps and faults in its memory before
 * a source connects, and each incoming VM borrows the front of it
 * (mem_lend); the VM that stays keeps it (mem_keep). */
#ifndef FERRY_VM_MEMORY_H
#define FERRY_VM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

enum mem_backend {
	MEM_ANON,
	MEM_MEMFD,
	MEM_HUGETLB
};

#define MEM_HUGE_PAGE (2ull << 20)

#define MEM_MAX_REGIONS 4

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	uint32_t slot;
};

struct guest_mem {
	enum mem_backend backend;
	int memfd;	 /* -1 unless MEM_MEMFD or MEM_HUGETLB */
	uint64_t size;	 /* total bytes over all regions */
	uint64_t mapped; /* bytes mapped at regions[0].host (>= size when kept) */
	bool borrowed;	 /* lent by another guest_mem: not unmapped here */
	bool reserved;	 /* its place kept, nothing mapped yet (mem_reserve) */
	unsigned nr_regions;
	struct mem_region regions[MEM_MAX_REGIONS];
	double populate_ms; /* time spent pre-faulting, if asked */
};

/* Map size bytes of guest RAM starting at guest-physical 0. */
int mem_create(struct guest_mem *mem, uint64_t size, enum mem_backend backend);
/* Keep a place of size bytes for guest RAM at guest-physical 0, mapping
 * nothing: a VM's memory slot can be made on it ahead (what takes long at
 * large sizes), and memory mapped there later (mem_fill, mem_adopt) costs
 * KVM nothing, where replacing a mapping inside a slot costs it a walk of
 * the slot's reverse map (2.7 ms at 16 GiB here). The place is where the
 * kernel maps nothing of its own accord, so it stays free. */
int mem_reserve(struct guest_mem *mem, uint64_t size);
/* Map new memory of backend into the place mem_reserve kept; -EEXIST if
 * something took it meanwhile. */
int mem_fill(struct guest_mem *mem, enum mem_backend backend);
/* What ferry leaves to the host whenever it takes memory for a guest: 5%
 * of its memory, at least MEM_ROOM_MARGIN_MIN, unless set (ferry run
 * --host-reserve; set once, before any thread starts). */
#define MEM_ROOM_MARGIN_MIN (256ull << 20)
void mem_set_host_reserve(uint64_t bytes);
uint64_t mem_host_reserve(void);
/* What the kernel counts as available now (MemAvailable), in bytes;
 * UINT64_MAX if it does not say. */
uint64_t mem_host_available(void);
/* Whether this host has size bytes of memory of backend to give a guest
 * now and still keeps its reserve: what the kernel counts as available.
 * -ENOMEM with a sentence if not. Huge pages pass: their pool is checked
 * as they are mapped (mem_create, mem_fill). */
int mem_check_room(uint64_t size, enum mem_backend backend);
/* Before ferry faults [at, at + len) of mem in (len <= MEM_CLAIM_STEP):
 * whether the host has room for what of it is not in memory yet and still
 * keeps its reserve, so that a host running short is a refusal rather
 * than the OOM killer's choice. done: the bytes of mem in place so far,
 * for the sentence. -ENOMEM with a sentence if not; huge pages pass. */
#define MEM_CLAIM_STEP (64ull << 20)
int mem_claim_check(const struct guest_mem *mem, const uint8_t *at, uint64_t len, uint64_t done);
/* Unmap it, unless borrowed. */
void mem_destroy(struct guest_mem *mem);
/* view: the first size bytes of owner's memory, borrowed (size <= owner's). */
void mem_lend(const struct guest_mem *owner, uint64_t size, struct guest_mem *view);
/* The borrowed view keeps the memory for good: owner is emptied, and what
 * lies past the view's size goes back to the host. */
void mem_keep(struct guest_mem *view, struct guest_mem *owner);
/* Fault every page in now (MADV_POPULATE_WRITE) so the guest or an incoming
 * migration does not pay first-touch costs later, a step at a time, each
 * once mem_claim_check allows it; records populate_ms. */
int mem_populate(struct guest_mem *mem);
/* Give the memory back to the host (contents become zero), e.g. once the
 * guest lives elsewhere. */
void mem_release(struct guest_mem *mem);
/* Sharing memory with another process. The memfd to hand over (not a
 * copy: still mem's), sealed against resizing; -EINVAL for memory no other
 * process can map (anon). */
int mem_share(struct guest_mem *mem, int *fd);
/* Map the memfd fd another process shared (mem_share), of backend, into
 * the place mem_reserve kept (-EEXIST if something took it); mem owns fd
 * from then on (not on failure). */
int mem_adopt(struct guest_mem *mem, int fd, enum mem_backend backend);
/* The pages belong to the process they were handed to: zeros take their
 * place here and the fd is closed, the file left as it is. */
void mem_hand_over(struct guest_mem *mem);
/* Forget [gpa, gpa + len), inside one region: its pages are not there
 * until touched (or, watched by vm/uffd.h, until placed). */
void mem_forget(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* mem_forget every page set in bits but not in except (may be NULL), of
 * npages, a run at a time. */
void mem_forget_set(const struct guest_mem *mem, const uint64_t *bits, const uint64_t *except,
		    uint64_t npages);
/* Host address of [gpa, gpa + len), or NULL if it is not all guest RAM. */
void *mem_host(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
const char *mem_backend_name(enum mem_backend backend);
/* The backend named name (anon, memfd, hugetlb); -EINVAL if none is. */
int mem_backend_parse(const char *name, enum mem_backend *out);

#endif
