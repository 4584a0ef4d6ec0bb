#include "vm/memory.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/page.h"
#include "util/size.h"
#include "util/time.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26)
#endif

static const char *const backend_names[] = { "anon", "memfd", "hugetlb" };

const char *mem_backend_name(enum mem_backend backend)
{
	return backend_names[backend];
}

int mem_backend_parse(const char *name, enum mem_backend *out)
{
	for (unsigned i = 0; i < sizeof(backend_names) / sizeof(backend_names[0]); i++)
		if (!strcmp(name, backend_names[i])) {
			*out = (enum mem_backend)i;
			return 0;
		}
	return -EINVAL;
}

/* 2 MiB aligned: transparent huge pages fit it, and so do the huge pages
 * of memory handed over to take its place (mem_adopt). */
static void *map_anon(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + MEM_HUGE_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *at;

	if (p == MAP_FAILED)
		return p;
	at = p + (MEM_HUGE_PAGE - (uintptr_t)p % MEM_HUGE_PAGE) % MEM_HUGE_PAGE;
	if (at > p)
		munmap(p, (size_t)(at - p));
	munmap(at + size, (size_t)(p + MEM_HUGE_PAGE - at));
	return at;
}

/* mem->memfd: a file of size bytes another process can map; -1 (errno)
 * if it cannot be made. */
static int map_memfd_file(struct guest_mem *mem, uint64_t size, unsigned flags)
{
	mem->memfd = memfd_create("ferry-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING | flags);
	if (mem->memfd < 0)
		return -1;
	if (ftruncate(mem->memfd, (off_t)size) < 0) {
		int saved = errno;

		close(mem->memfd);
		mem->memfd = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

static void *map_memfd(struct guest_mem *mem, uint64_t size, unsigned flags)
{
	if (map_memfd_file(mem, size, flags) < 0)
		return MAP_FAILED;
	return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->memfd, 0);
}

/* A number of /proc/meminfo, e.g. HugePages_Free; -1 if missing. */
static long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	size_t len = strlen(key);
	long n = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':' &&
		    sscanf(line + len + 1, "%ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static bool reserve_given;
static uint64_t reserve_bytes;

void mem_set_host_reserve(uint64_t bytes)
{
	reserve_given = true;
	reserve_bytes = bytes;
}

uint64_t mem_host_reserve(void)
{
	long total = meminfo("MemTotal");
	uint64_t share = total > 0 ? (uint64_t)total * 1024 / 20 : 0;

	if (reserve_given)
		return reserve_bytes;
	return share < MEM_ROOM_MARGIN_MIN ? MEM_ROOM_MARGIN_MIN : share;
}

uint64_t mem_host_available(void)
{
	long kib = meminfo("MemAvailable");

	return kib < 0 ? UINT64_MAX : (uint64_t)kib * 1024;
}

/* Whether the host has want more bytes to give and still keeps its
 * reserve; *avail is what it has (unknown: always room). */
static bool room_for(uint64_t want, uint64_t *avail)
{
	*avail = mem_host_available();
	return *avail == UINT64_MAX || (want <= *avail && mem_host_reserve() <= *avail - want);
}

int mem_check_room(uint64_t size, enum mem_backend backend)
{
	char want[32], have[32], keep[32];
	uint64_t avail;

	if (backend == MEM_HUGETLB || room_for(size, &avail))
		return 0; /* huge pages: the pool is checked as they are mapped */
	return err_set(-ENOMEM,
		       "guest memory %s is more than this host can give now (%s available, of "
		       "which %s stays for the host: --host-reserve)",
		       size_format(size, want, sizeof(want)),
		       size_format(avail, have, sizeof(have)),
		       size_format(mem_host_reserve(), keep, sizeof(keep)));
}

/* Bytes of [at, at + len) not in memory yet. */
static uint64_t absent_bytes(const uint8_t *at, uint64_t len)
{
	unsigned char vec[MEM_CLAIM_STEP / FERRY_PAGE_SIZE];
	uint64_t pages = (len + FERRY_PAGE_SIZE - 1) / FERRY_PAGE_SIZE, absent = 0;

	if (mincore((void *)at, len, vec) < 0)
		return len;
	for (uint64_t i = 0; i < pages; i++)
		absent += !(vec[i] & 1);
	return absent * FERRY_PAGE_SIZE;
}

int mem_claim_check(const struct guest_mem *mem, const uint8_t *at, uint64_t len, uint64_t done)
{
	char have[32], keep[32], in[32], all[32], more[32];
	uint64_t avail, absent;

	assert(len <= MEM_CLAIM_STEP);
	if (mem->backend == MEM_HUGETLB)
		return 0; /* huge pages were reserved when mapped */
	absent = absent_bytes(at, len);
	if (room_for(absent, &avail))
		return 0;
	return err_set(-ENOMEM,
		       "the host ran short of memory with %s of the guest's %s in place: %s more "
		       "would leave it less than its reserve of %s (--host-reserve; %s available)",
		       size_format(done, in, sizeof(in)), size_format(mem->size, all, sizeof(all)),
		       size_format(absent, more, sizeof(more)),
		       size_format(mem_host_reserve(), keep, sizeof(keep)),
		       size_format(avail, have, sizeof(have)));
}

static int map_failed(uint64_t size, enum mem_backend backend, int rc)
{
	long need = (long)(size / MEM_HUGE_PAGE), free = meminfo("HugePages_Free");

	if (backend == MEM_HUGETLB && rc == -ENOMEM && free >= 0 && free < need)
		return err_set(rc,
			       "cannot take %llu MiB of 2 MiB huge pages: the host's pool has %ld "
			       "free; reserve %ld more with: sysctl vm.nr_hugepages=%ld",
			       (unsigned long long)(size >> 20), free, need - free,
			       meminfo("HugePages_Total") + need - free);
	return err_set(rc, "cannot allocate %llu MiB of %s guest memory: %s",
		       (unsigned long long)(size >> 20), mem_backend_name(backend), strerror(-rc));
}

static void *map(struct guest_mem *mem, uint64_t size, enum mem_backend backend)
{
	switch (backend) {
	case MEM_MEMFD:
		return map_memfd(mem, size, 0);
	case MEM_HUGETLB:
		return map_memfd(mem, size, MFD_HUGETLB | MFD_HUGE_2MB);
	default:
		return map_anon(size);
	}
}

/* Where the kernel puts no mapping of its own accord (it places them from
 * the top of the address space down): a range kept for guest memory there
 * stays free until it is filled. */
#define RESERVE_HINT  (1ull << 40)
#define RESERVE_TRIES 8

/* A 2 MiB aligned range of size bytes that nothing maps: low in the
 * address space if there is room. The tries are hints, not demands (a
 * sanitizer's runtime drops hints into its own ranges and would kill the
 * process for a demand), and the last keeps what the kernel chose. */
static uint8_t *free_range(uint64_t size)
{
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	uint64_t span = size + MEM_HUGE_PAGE,
		 step = (span + RESERVE_HINT - 1) & ~(RESERVE_HINT - 1);
	uint8_t *p = MAP_FAILED;

	for (unsigned i = 0; i < RESERVE_TRIES; i++) {
		uint8_t *hint = (uint8_t *)(uintptr_t)(RESERVE_HINT + i * step);

		p = mmap(hint, span, PROT_NONE, flags, -1, 0);
		if (p == MAP_FAILED || p == hint || i + 1 == RESERVE_TRIES)
			break;
		munmap(p, span);
	}
	if (p == MAP_FAILED)
		return p;
	munmap(p, span);
	return p + (MEM_HUGE_PAGE - (uintptr_t)p % MEM_HUGE_PAGE) % MEM_HUGE_PAGE;
}

int mem_reserve(struct guest_mem *mem, uint64_t size)
{
	uint8_t *host = free_range(size);

	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	if (host == MAP_FAILED)
		return err_set(-errno, "no room for %llu MiB of guest memory: %s",
			       (unsigned long long)(size >> 20), strerror(errno));
	mem->size = size;
	mem->reserved = true;
	mem->nr_regions = 1;
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = size, .host = host, .slot = 0 };
	return 0;
}

/* Map fd (or anonymous memory, fd -1) into the range kept for it. */
static int fill(struct guest_mem *mem, int fd)
{
	uint8_t *host = mem->regions[0].host;
	int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE : MAP_SHARED;
	uint8_t *p;

	if (!mem->reserved)
		return err_set(-EINVAL, "guest memory is mapped already");
	p = mmap(host, mem->size, PROT_READ | PROT_WRITE, flags | MAP_FIXED_NOREPLACE, fd, 0);
	if (p != host && p != MAP_FAILED) { /* a kernel that took it for a hint */
		munmap(p, mem->size);
		errno = EEXIST;
	}
	if (p != host)
		return err_set(-errno, "cannot map guest memory where its place was kept: %s",
			       strerror(errno));
	mem->reserved = false;
	mem->mapped = mem->size;
	return 0;
}

int mem_create(struct guest_mem *mem, uint64_t size, enum mem_backend backend)
{
	uint8_t *host;

	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	mem->backend = backend;
	if (backend == MEM_HUGETLB && size % MEM_HUGE_PAGE)
		return err_set(-EINVAL, "hugetlb guest memory must be a multiple of 2 MiB");
	host = map(mem, size, backend);
	if (host == MAP_FAILED) {
		int rc = -errno;

		if (mem->memfd >= 0)
			close(mem->memfd);
		mem->memfd = -1;
		return map_failed(size, backend, rc);
	}
	/* Transparent huge pages make first touch and KVM's own mappings
	 * cheaper where the host has them; dirty logging still splits them
	 * to 4 KiB where it needs to. */
	if (backend != MEM_HUGETLB)
		madvise(host, size, MADV_HUGEPAGE);
	mem->size = mem->mapped = size;
	mem->nr_regions = 1;
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = size, .host = host, .slot = 0 };
	return 0;
}

int mem_fill(struct guest_mem *mem, enum mem_backend backend)
{
	unsigned flags = backend == MEM_HUGETLB ? MFD_HUGETLB | MFD_HUGE_2MB : 0;
	int rc;

	mem->backend = backend;
	if (backend != MEM_ANON && map_memfd_file(mem, mem->size, flags) < 0)
		return map_failed(mem->size, backend, -errno);
	rc = fill(mem, mem->memfd);
	if (rc == 0 && backend != MEM_HUGETLB)
		madvise(mem->regions[0].host, mem->size, MADV_HUGEPAGE);
	if (rc < 0 && mem->memfd >= 0) {
		close(mem->memfd);
		mem->memfd = -1;
	}
	return rc;
}

void mem_destroy(struct guest_mem *mem)
{
	if (!mem->borrowed && mem->nr_regions)
		munmap(mem->regions[0].host, mem->mapped);
	if (!mem->borrowed && mem->memfd >= 0)
		close(mem->memfd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
}

void mem_lend(const struct guest_mem *owner, uint64_t size, struct guest_mem *view)
{
	*view = *owner;
	view->borrowed = true;
	view->size = view->regions[0].size = size;
	view->populate_ms = 0;
}

void mem_keep(struct guest_mem *view, struct guest_mem *owner)
{
	uint64_t tail = view->mapped - view->size;

	if (tail) {
		munmap(view->regions[0].host + view->size, tail);
		if (view->memfd >= 0 && ftruncate(view->memfd, (off_t)view->size) < 0)
			log_warn("guest memory: cannot give back the unused %llu MiB: %s",
				 (unsigned long long)(tail >> 20), strerror(errno));
	}
	view->mapped = view->size;
	view->borrowed = false;
	memset(owner, 0, sizeof(*owner));
	owner->memfd = -1;
}

/* Fault [at, at + len) in, a step at a time, each once the host has room
 * for it; *done counts the bytes in place. */
static int populate_region(struct guest_mem *mem, uint8_t *at, uint64_t len, uint64_t *done)
{
	for (uint64_t off = 0; off < len; off += MEM_CLAIM_STEP) {
		uint64_t step = len - off < MEM_CLAIM_STEP ? len - off : MEM_CLAIM_STEP;
		int rc = mem_claim_check(mem, at + off, step, *done);

		if (rc < 0)
			return rc;
		if (madvise(at + off, step, MADV_POPULATE_WRITE) < 0)
			return err_set(-errno, "cannot pre-fault guest memory: %s",
				       strerror(errno));
		*done += step;
	}
	return 0;
}

int mem_populate(struct guest_mem *mem)
{
	uint64_t start = time_now_ns(), done = 0;

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		int rc = populate_region(mem, mem->regions[i].host, mem->regions[i].size, &done);

		if (rc < 0)
			return rc;
	}
	mem->populate_ms = time_ms_since(start);
	log_info("populated %llu MiB of guest memory in %.0f ms",
		 (unsigned long long)(mem->size >> 20), mem->populate_ms);
	return 0;
}

int mem_share(struct guest_mem *mem, int *fd)
{
	if (mem->memfd < 0)
		return err_set(-EINVAL, "guest memory is %s, which another process cannot map",
			       mem_backend_name(mem->backend));
	/* The receiver maps all of it: a file that shrank under its mapping
	 * would kill it with SIGBUS. */
	if (fcntl(mem->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return err_set(-errno, "cannot seal guest memory against resizing: %s",
			       strerror(errno));
	*fd = mem->memfd;
	return 0;
}

/* Whether fd is memory handed over that ferry can map: a file of size
 * bytes, sealed against shrinking, of a kind ferry maps. */
static int check_handed(int fd, uint64_t size, enum mem_backend backend)
{
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		return err_set(-EINVAL, "the memory handed over is not a file of %llu bytes",
			       (unsigned long long)size);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return err_set(-EINVAL, "the memory handed over may shrink under its mapping "
					"(not sealed with F_SEAL_SHRINK)");
	if ((backend != MEM_MEMFD && backend != MEM_HUGETLB) ||
	    (backend == MEM_HUGETLB && size % MEM_HUGE_PAGE))
		return err_set(-EINVAL, "the memory handed over is of no kind ferry maps");
	return 0;
}

int mem_adopt(struct guest_mem *mem, int fd, enum mem_backend backend)
{
	int rc = check_handed(fd, mem->size, backend);

	if (rc == 0)
		rc = fill(mem, fd);
	if (rc < 0)
		return rc;
	mem->memfd = fd;
	mem->backend = backend;
	return 0;
}

void mem_hand_over(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];

		mmap(r->host, r->size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	}
	if (mem->memfd >= 0)
		close(mem->memfd);
	mem->memfd = -1;
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

void mem_forget(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *host = mem_host(mem, gpa, len);

	if (!host)
		return;
	if (mem->memfd >= 0)
		fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)gpa,
			  (off_t)len);
	madvise(host, len, MADV_DONTNEED);
}

static bool to_forget(const uint64_t *bits, const uint64_t *except, uint64_t g)
{
	return bitmap_test(bits, g) && !(except && bitmap_test(except, g));
}

void mem_forget_set(const struct guest_mem *mem, const uint64_t *bits, const uint64_t *except,
		    uint64_t npages)
{
	uint64_t g = bitmap_next(bits, npages, 0);

	while (g < npages) {
		uint64_t end = g + 1;

		if (to_forget(bits, except, g)) {
			while (end < npages && to_forget(bits, except, end) &&
			       mem_host(mem, end * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE) ==
				       (uint8_t *)mem_host(mem, g * FERRY_PAGE_SIZE,
							   FERRY_PAGE_SIZE) +
					       (end - g) * FERRY_PAGE_SIZE)
				end++;
			mem_forget(mem, g * FERRY_PAGE_SIZE, (end - g) * FERRY_PAGE_SIZE);
		}
		g = bitmap_next(bits, npages, end);
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
