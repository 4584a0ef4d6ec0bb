/* Guest memory filled on demand: a userfaultfd in missing mode over guest
 * RAM. A thread (a vCPU, KVM on its behalf, or the VMM) that touches a page
 * not there waits in the kernel until uffd_place or uffd_zero puts the page
 * there, whole and at once; whoever reads the faults (uffd_next_fault)
 * fetches it from wherever it is. A page that is there already is never
 * overwritten: the first copy placed wins. */
#ifndef FERRY_VM_UFFD_H
#define FERRY_VM_UFFD_H

#include <stdint.h>

#include "vm/memory.h"

struct uffd {
	int fd;
};

/* Whether memory of this backend can be filled on demand on this host: 0,
 * or -errno with a sentence (no userfaultfd, or 2 MiB pages). */
int uffd_supported(enum mem_backend backend);
/* A userfaultfd over every region of mem, in missing mode. */
int uffd_open(struct uffd *u, const struct guest_mem *mem);
void uffd_close(struct uffd *u);
/* One page at host address dst, copied from src: 0 placed (a thread waiting
 * for it runs on), 1 it was there already, or -errno with a sentence. */
int uffd_place(struct uffd *u, void *dst, const void *src);
/* The same for a page of zeros. */
int uffd_zero(struct uffd *u, void *dst);
/* A thread waits for the page at host address addr; tid is its id (0 if
 * the kernel does not say). */
struct uffd_fault {
	uint64_t addr;
	int tid;
};

/* The next fault: 0, -ETIMEDOUT after timeout_ms (-1: none), or -errno
 * with a sentence. */
int uffd_next_fault(struct uffd *u, int timeout_ms, struct uffd_fault *f);

#endif
