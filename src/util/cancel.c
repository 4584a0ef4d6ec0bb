#include "util/cancel.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/error.h"
#include "util/time.h"

int cancel_init(struct cancel *c)
{
	c->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->fd < 0)
		return err_set(-errno, "eventfd: %s", strerror(errno));
	return 0;
}

void cancel_destroy(struct cancel *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void cancel_fire(struct cancel *c)
{
	uint64_t one = 1;

	(void)!write(c->fd, &one, sizeof(one));
}

void cancel_reset(struct cancel *c)
{
	uint64_t n;

	(void)!read(c->fd, &n, sizeof(n));
}

bool cancel_fired(const struct cancel *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

bool cancel_sleep_ns(const struct cancel *c, unsigned long long ns)
{
	uint64_t deadline = time_now_ns() + ns;

	if (!c || c->fd < 0) {
		time_sleep_ns(ns);
		return false;
	}
	for (uint64_t now = time_now_ns(); now < deadline; now = time_now_ns()) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		struct timespec left = { .tv_sec = (time_t)((deadline - now) / NS_PER_S),
					 .tv_nsec = (long)((deadline - now) % NS_PER_S) };

		if (ppoll(&p, 1, &left, NULL) == 1)
			return true;
	}
	return false;
}
