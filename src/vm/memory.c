#include "vm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/error.h"
#include "util/log.h"
#include "util/time.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

const char *mem_backend_name(enum mem_backend backend)
{
	return backend == MEM_MEMFD ? "memfd" : "anon";
}

static void *map_anon(uint64_t size)
{
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
}

static void *map_memfd(struct guest_mem *mem, uint64_t size)
{
	mem->memfd = memfd_create("ferry-guest-ram", MFD_CLOEXEC);
	if (mem->memfd < 0)
		return MAP_FAILED;
	if (ftruncate(mem->memfd, (off_t)size) < 0) {
		int saved = errno;

		close(mem->memfd);
		mem->memfd = -1;
		errno = saved;
		return MAP_FAILED;
	}
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->memfd, 0);
}

int mem_create(struct guest_mem *mem, uint64_t size, enum mem_backend backend)
{
	uint8_t *host;
	int rc;

	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	mem->backend = backend;
	host = backend == MEM_MEMFD ? map_memfd(mem, size) : map_anon(size);
	if (host == MAP_FAILED) {
		rc = -errno;
		return err_set(rc, "cannot allocate %llu MiB of %s guest memory: %s",
			       (unsigned long long)(size >> 20), mem_backend_name(backend),
			       strerror(-rc));
	}
	/* Huge pages make first touch and KVM's own mappings cheaper; dirty
	 * logging still splits them to 4 KiB where it needs to. */
	madvise(host, size, MADV_HUGEPAGE);
	mem->size = size;
	mem->nr_regions = 1;
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = size, .host = host, .slot = 0 };
	return 0;
}

void mem_destroy(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++)
		munmap(mem->regions[i].host, mem->regions[i].size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
}

int mem_populate(struct guest_mem *mem)
{
	uint64_t start = time_now_ns();

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];

		if (madvise(r->host, r->size, MADV_POPULATE_WRITE) < 0) {
			int rc = -errno;

			return err_set(rc, "cannot pre-fault guest memory: %s", strerror(-rc));
		}
	}
	mem->populate_ms = time_ms_since(start);
	log_info("populated %llu MiB of guest memory in %.0f ms",
		 (unsigned long long)(mem->size >> 20), mem->populate_ms);
	return 0;
}

void mem_release(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];

		if (mem->memfd >= 0)
			fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)r->gpa, (off_t)r->size);
		madvise(r->host, r->size, MADV_DONTNEED);
	}
}

void *mem_host(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}
