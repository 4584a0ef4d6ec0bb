#include "vm/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/error.h"
#include "util/page.h"

int uffd_supported(enum mem_backend backend)
{
	struct uffd u;
	struct guest_mem none = { .nr_regions = 0 };
	int rc;

	if (backend == MEM_HUGETLB)
		return err_set(-EOPNOTSUPP,
			       "pages are placed 4 KiB at a time, and this guest's memory is 2 MiB "
			       "huge pages (--mem-backend anon or memfd)");
	rc = uffd_open(&u, &none);
	if (rc == 0)
		uffd_close(&u);
	return rc;
}

/* The API, with the faulting thread's id if this kernel gives it (a
 * refused feature fails the ioctl, and the fd must be opened again). */
static int open_api(struct uffd *u)
{
	uint64_t features[2] = { UFFD_FEATURE_THREAD_ID, 0 };
	int saved = 0;

	for (int i = 0; i < 2; i++) {
		struct uffdio_api api = { .api = UFFD_API, .features = features[i] };

		u->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (u->fd < 0)
			return err_set(-errno, "this host refuses userfaultfd (%s)",
				       strerror(errno));
		if (ioctl(u->fd, UFFDIO_API, &api) == 0)
			return 0;
		saved = errno;
		uffd_close(u);
	}
	return err_set(-saved, "userfaultfd: no usable API (%s)", strerror(saved));
}

int uffd_open(struct uffd *u, const struct guest_mem *mem)
{
	int rc = open_api(u);

	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct uffdio_register reg = { .range = { (uint64_t)(uintptr_t)mem->regions[i].host,
							  mem->regions[i].size },
					       .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0) {
			int saved = errno;

			uffd_close(u);
			return err_set(-saved, "userfaultfd cannot watch guest memory (%s)",
				       strerror(saved));
		}
	}
	return 0;
}

void uffd_close(struct uffd *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

/* An ioctl that places a page: EEXIST means another copy came first. */
static int placed(int rc, const char *what)
{
	if (rc == 0)
		return 0;
	if (errno == EEXIST)
		return 1;
	return err_set(-errno, "cannot place a page (%s): %s", what, strerror(errno));
}

/* EAGAIN: the address space changed under the ioctl; it may be tried again. */
static int place_ioctl(int fd, unsigned long op, void *arg)
{
	int rc;

	while ((rc = ioctl(fd, op, arg)) < 0 && errno == EAGAIN)
		;
	return rc;
}

int uffd_place(struct uffd *u, void *dst, const void *src)
{
	struct uffdio_copy c = { .dst = (uint64_t)(uintptr_t)dst,
				 .src = (uint64_t)(uintptr_t)src,
				 .len = FERRY_PAGE_SIZE };

	return placed(place_ioctl(u->fd, UFFDIO_COPY, &c), "UFFDIO_COPY");
}

int uffd_zero(struct uffd *u, void *dst)
{
	struct uffdio_zeropage z = { .range = { (uint64_t)(uintptr_t)dst, FERRY_PAGE_SIZE } };

	return placed(place_ioctl(u->fd, UFFDIO_ZEROPAGE, &z), "UFFDIO_ZEROPAGE");
}

int uffd_next_fault(struct uffd *u, int timeout_ms, struct uffd_fault *f)
{
	for (;;) {
		struct pollfd p = { .fd = u->fd, .events = POLLIN };
		struct uffd_msg msg;
		ssize_t n;
		int rc = poll(&p, 1, timeout_ms);

		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0 && errno != EINTR)
			return err_set(-errno, "userfaultfd: %s", strerror(errno));
		n = read(u->fd, &msg, sizeof(msg));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != sizeof(msg))
			return err_set(n < 0 ? -errno : -EIO, "userfaultfd: a short read");
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		f->addr = msg.arg.pagefault.address & ~(uint64_t)(FERRY_PAGE_SIZE - 1);
		f->tid = (int)msg.arg.pagefault.feat.ptid;
		return 0;
	}
}
