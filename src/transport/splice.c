#include "transport/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan.h"
#include "util/error.h"
#include "util/time.h"

/* A pipe holds this much at once: fewer calls per record (the kernel's
 * default limit for an unprivileged pipe). */
#define PIPE_BYTES (1 << 20)

bool splice_suits(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	int flags = fcntl(fd, F_GETFL);

	/* The socket must not block: every wait goes through chan's poll,
	 * which honours the timeout and the cancel. */
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX &&
	       flags >= 0 && (flags & O_NONBLOCK);
}

static int open_pipe(struct chan *c)
{
	if (c->piped)
		return 0;
	if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set(-errno, "cannot make a pipe for the channel: %s", strerror(errno));
	fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_BYTES); /* the default size works too */
	c->piped = true;
	return 0;
}

/* Move len bytes from the pipe into the socket. (splice has no
 * MSG_NOSIGNAL: a closed peer raises SIGPIPE, which ferry ignores,
 * cli/main.c, so it ends as EPIPE here.) */
static int drain(struct chan *c, size_t len)
{
	while (len) {
		ssize_t n = splice(c->pipe[0], NULL, c->fd, NULL, len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		uint64_t t0;
		int rc;

		if (n > 0) {
			c->bytes_sent += (uint64_t)n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return err_set(n ? -errno : -EPIPE, "the connection broke (%s)",
				       n ? strerror(errno) : "nothing moved");
		t0 = time_now_ns();
		rc = chan_wait_ready(c, POLLOUT);
		c->write_wait_ns += time_now_ns() - t0;
		if (rc < 0)
			return rc;
	}
	return 0;
}

int splice_pages(struct chan *c, struct iovec v)
{
	int rc = open_pipe(c);

	while (rc == 0 && v.iov_len) {
		/* The pipe is empty here, so this takes what fits and returns. */
		ssize_t n = vmsplice(c->pipe[1], &v, 1, SPLICE_F_NONBLOCK);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return err_set(n ? -errno : -EIO, "cannot hand pages to the channel: %s",
				       n ? strerror(errno) : "nothing moved");
		}
		v.iov_base = (char *)v.iov_base + n;
		v.iov_len -= (size_t)n;
		rc = drain(c, (size_t)n);
	}
	return rc;
}

void splice_close(struct chan *c)
{
	if (!c->piped)
		return;
	close(c->pipe[0]);
	close(c->pipe[1]);
	c->piped = false;
}
