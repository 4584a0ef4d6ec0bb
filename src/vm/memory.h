/* Guest RAM: host mappings of guest-physical regions, one KVM memslot each.
 * Anonymous private memory by default; memfd-backed shared memory as an
 * option (a second process can map the same pages, for local migration). */
#ifndef FERRY_VM_MEMORY_H
#define FERRY_VM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

enum mem_backend {
	MEM_ANON,
	MEM_MEMFD
};

#define MEM_MAX_REGIONS 4

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	uint32_t slot;
};

struct guest_mem {
	enum mem_backend backend;
	int memfd;     /* -1 unless MEM_MEMFD */
	uint64_t size; /* total bytes over all regions */
	unsigned nr_regions;
	struct mem_region regions[MEM_MAX_REGIONS];
	double populate_ms; /* time spent pre-faulting, if asked */
};

/* Map size bytes of guest RAM starting at guest-physical 0. */
int mem_create(struct guest_mem *mem, uint64_t size, enum mem_backend backend);
void mem_destroy(struct guest_mem *mem);
/* Fault every page in now (MADV_POPULATE_WRITE) so the guest or an incoming
 * migration does not pay first-touch costs later; records populate_ms. */
int mem_populate(struct guest_mem *mem);
/* Give the memory back to the host (contents become zero), e.g. once the
 * guest lives elsewhere. */
void mem_release(struct guest_mem *mem);
/* Host address of [gpa, gpa + len), or NULL if it is not all guest RAM. */
void *mem_host(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
const char *mem_backend_name(enum mem_backend backend);

#endif
