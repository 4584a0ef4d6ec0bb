#include "transport/chan.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/splice.h"
#include "transport/tls.h"
#include "transport/unixsock.h"
#include "transport/uri.h"
#include "util/cancel.h"
#include "util/error.h"
#include "util/page.h"
#include "util/time.h"

/* The main connection, every data channel, and room for strays. */
#define LISTEN_BACKLOG 32

void chan_init_fd(struct chan *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = CHAN_DEFAULT_TIMEOUT_MS;
	c->cancel = NULL;
	c->by_ref = fd >= 0 && splice_suits(fd);
	ratelimit_init(&c->rl, 0);
}

int chan_start_tls(struct chan *c, const struct tls_creds *t, const char *peer)
{
	struct tls_session *s = NULL;
	int rc;

	if (!t)
		return 0;
	rc = tls_session_new(t, c->fd, &s);
	while (rc == 0 && (rc = tls_session_step(s)) == -EAGAIN)
		rc = chan_wait_ready(c, tls_session_want(s));
	if (rc < 0) {
		tls_session_free(s);
		return rc;
	}
	/* From here a refusal can go to the peer, over the session. */
	c->tls = s;
	c->by_ref = false; /* pages go encrypted, by copy */
	rc = tls_session_authorize(s);
	if (rc == 0 && peer && strcmp(tls_session_peer(s), peer))
		rc = err_set(-EACCES, "TLS: the peer is '%s', not '%s' whose migration this is",
			     tls_session_peer(s), peer);
	return rc;
}

void chan_set_deadline(struct chan *c, const char *what, uint32_t seconds)
{
	c->deadline = (struct chan_deadline){
		.at_ns = seconds ? time_now_ns() + seconds * NS_PER_S : 0,
		.what = what,
		.seconds = seconds,
	};
}

/* Milliseconds left before c's deadline, rounded up (0: past it); -1 if it
 * has none. */
static int64_t deadline_left_ms(const struct chan *c)
{
	uint64_t now;

	if (!c->deadline.at_ns)
		return -1;
	now = time_now_ns();
	return now >= c->deadline.at_ns
		       ? 0
		       : (int64_t)((c->deadline.at_ns - now + NS_PER_MS - 1) / NS_PER_MS);
}

static int deadline_passed(const struct chan *c)
{
	return err_set(-ETIMEDOUT, "%s took longer than its deadline of %u s", c->deadline.what,
		       c->deadline.seconds);
}

/* A TCP connection whose two ends are this host: the peer's address is a
 * loopback one, or our own. */
static bool same_host(int fd)
{
	struct sockaddr_storage ours, theirs;
	socklen_t lo = sizeof(ours), lt = sizeof(theirs);
	const struct sockaddr_in *t4 = (const struct sockaddr_in *)&theirs;
	const struct sockaddr_in6 *t6 = (const struct sockaddr_in6 *)&theirs;

	if (getsockname(fd, (struct sockaddr *)&ours, &lo) < 0 ||
	    getpeername(fd, (struct sockaddr *)&theirs, &lt) < 0 || lo != lt)
		return false;
	if (theirs.ss_family == AF_INET)
		return (ntohl(t4->sin_addr.s_addr) >> 24) == 127 ||
		       t4->sin_addr.s_addr == ((const struct sockaddr_in *)&ours)->sin_addr.s_addr;
	return theirs.ss_family == AF_INET6 &&
	       (IN6_IS_ADDR_LOOPBACK(&t6->sin6_addr) ||
		!memcmp(&t6->sin6_addr, &((const struct sockaddr_in6 *)&ours)->sin6_addr,
			sizeof(t6->sin6_addr)));
}

/* Unix sockets get big buffers (their default is small). TCP keeps its
 * autotuning, but with little unsent data in the kernel: what waits there
 * is stale by switchover and delays the last records (bufferbloat on a
 * shaped link). TCP_NODELAY keeps the small hand-off records off Nagle.
 * Between two ends on one host there is no queue to pace for, and the
 * pacing of a default such as BBR costs the sender CPU (its timers, per
 * burst): such a connection uses CUBIC where the kernel has it. */
static void tune_socket(int fd, bool tcp)
{
	int one = 1, buf = 4 << 20, lowat = CHAN_NOTSENT_LOWAT;

	if (!tcp) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	if (same_host(fd))
		setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "cubic", strlen("cubic"));
}

/* The sentence for a failed connect to host[:port]. */
static int connect_error(int rc, const char *host, const char *port, int timeout_ms)
{
	const char *sep = port ? ":" : "";

	if (!port)
		port = "";
	if (rc == -ECANCELED)
		return err_set(rc, "cancelled while connecting to %s%s%s", host, sep, port);
	if (rc == -ETIMEDOUT)
		return err_set(rc, "cannot connect to %s%s%s: no answer in %.1f s", host, sep, port,
			       timeout_ms / 1000.0);
	return err_set(rc, "cannot connect to %s%s%s: %s", host, sep, port, strerror(-rc));
}

/* Wait for a non-blocking connect on fd to finish: 0, or -errno. */
static int finish_connect(int fd, int timeout_ms, const struct cancel *cancel)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLOUT },
			       { .fd = cancel ? cancel->fd : -1, .events = POLLIN } };
	socklen_t len = sizeof(int);
	int rc, err = 0;

	do
		rc = poll(p, 2, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (p[1].revents)
		return -ECANCELED;
	if (rc == 0)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/* A non-blocking socket connected to addr within timeout_ms; -errno. A
 * unix listener whose backlog is full answers EAGAIN: try again shortly. */
static int connect_addr(int family, int type, int proto, const struct sockaddr *addr, socklen_t len,
			int timeout_ms, const struct cancel *cancel)
{
	uint64_t deadline = time_now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, proto), rc;

	if (fd < 0)
		return -errno;
	for (;;) {
		rc = connect(fd, addr, len) == 0 ? 0 : -errno;
		if (rc == -EINPROGRESS)
			rc = finish_connect(fd, timeout_ms, cancel);
		if (rc != -EAGAIN)
			break;
		if (time_now_ns() >= deadline)
			rc = -ETIMEDOUT;
		else if (cancel_sleep_ns(cancel, 10 * NS_PER_MS))
			rc = -ECANCELED;
		if (rc != -EAGAIN)
			break;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static int connect_tcp(const struct uri *u, int timeout_ms, const struct cancel *cancel)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, rc = getaddrinfo(u->host, u->port, &hints, &res);

	if (rc)
		return err_set(-EHOSTUNREACH, "cannot resolve %s: %s", u->host, gai_strerror(rc));
	for (ai = res; ai && fd < 0 && rc != -ECANCELED; ai = ai->ai_next) {
		rc = fd = connect_addr(ai->ai_family, ai->ai_socktype, ai->ai_protocol, ai->ai_addr,
				       ai->ai_addrlen, timeout_ms, cancel);
	}
	freeaddrinfo(res);
	if (fd < 0)
		return connect_error(rc, u->host, u->port, timeout_ms);
	tune_socket(fd, true);
	return fd;
}

static void unix_addr(const struct uri *u, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, u->path, strlen(u->path) + 1);
}

static int connect_unix(const struct uri *u, int timeout_ms, const struct cancel *cancel)
{
	struct sockaddr_un addr;
	int fd;

	unix_addr(u, &addr);
	fd = connect_addr(AF_UNIX, SOCK_STREAM, 0, (struct sockaddr *)&addr, sizeof(addr),
			  timeout_ms, cancel);
	if (fd < 0)
		return connect_error(fd, u->path, NULL, timeout_ms);
	tune_socket(fd, false);
	return fd;
}

/* fd:N must be a connected stream socket, given to us for this migration:
 * anything else (a file, a pipe, a descriptor never opened) is refused and
 * left alone. */
static int check_stream_socket(int fd)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int), plen = sizeof(peer);
	struct stat st;
	int type = 0;

	if (fstat(fd, &st) < 0)
		return err_set(-EBADF, "fd:%d is not an open descriptor", fd);
	if (!S_ISSOCK(st.st_mode))
		return err_set(-ENOTSOCK, "fd:%d is not a socket", fd);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return err_set(-ENOTSOCK, "fd:%d is not a stream socket", fd);
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return err_set(-ENOTCONN, "fd:%d is a socket that is not connected", fd);
	return fd;
}

int chan_check_uri(const char *text)
{
	struct uri u;
	int rc = uri_parse(text, &u);

	if (rc == 0 && u.kind == URI_FD)
		rc = check_stream_socket(u.fd) < 0 ? -ENOTSOCK : 0;
	return rc;
}

bool chan_uri_is_unix(const char *text)
{
	struct uri u;
	int domain = 0;
	socklen_t len = sizeof(domain);

	if (uri_parse(text, &u) < 0)
		return false;
	if (u.kind == URI_FD)
		return getsockopt(u.fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		       domain == AF_UNIX;
	return u.kind == URI_UNIX;
}

int chan_connect(struct chan *c, const char *text, int timeout_ms, const struct cancel *cancel)
{
	struct uri u;
	int fd = uri_parse(text, &u);

	if (fd < 0)
		return fd;
	if (u.kind == URI_TCP)
		fd = connect_tcp(&u, timeout_ms, cancel);
	else if (u.kind == URI_UNIX)
		fd = connect_unix(&u, timeout_ms, cancel);
	else
		fd = check_stream_socket(u.fd);
	if (fd < 0)
		return fd;
	chan_init_fd(c, fd);
	c->timeout_ms = timeout_ms;
	c->cancel = cancel;
	return 0;
}

static int listen_tcp(const struct uri *u)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	int fd, rc = getaddrinfo(u->host, u->port, &hints, &res), one = 1;

	if (rc)
		return err_set(-EADDRNOTAVAIL, "cannot resolve %s: %s", u->host, gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0) {
		freeaddrinfo(res);
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ? -errno
											   : 0;
	freeaddrinfo(res);
	if (rc < 0) {
		close(fd);
		return err_set(rc, "cannot listen on %s:%s: %s", u->host, u->port, strerror(-rc));
	}
	return fd;
}

int chan_listen(const char *text)
{
	struct uri u;
	int rc = uri_parse(text, &u);

	if (rc < 0)
		return rc;
	if (u.kind == URI_TCP)
		return listen_tcp(&u);
	if (u.kind == URI_UNIX)
		return unixsock_listen(u.path, 0, LISTEN_BACKLOG);
	return check_stream_socket(u.fd);
}

int chan_accept(struct chan *c, int lfd, const char *text, int timeout_ms,
		const struct cancel *cancel)
{
	struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
			       { .fd = cancel ? cancel->fd : -1, .events = POLLIN } };
	struct uri u;
	int fd, rc = uri_parse(text, &u);

	if (rc < 0)
		return rc;
	if (u.kind == URI_FD) { /* already connected: one migration only */
		chan_init_fd(c, lfd);
		c->cancel = cancel;
		return 0;
	}
	rc = poll(p, 2, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? err_set(-ETIMEDOUT, "interrupted") : -errno;
	if (p[1].revents)
		return err_set(-ECANCELED, "cancelled");
	if (rc == 0)
		return err_set(-ETIMEDOUT, "no migration arrived");
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return err_set(-errno, "accept: %s", strerror(errno));
	tune_socket(fd, u.kind == URI_TCP);
	chan_init_fd(c, fd);
	c->cancel = cancel;
	return 0;
}

/* Whether c's company heard something since *heard (then updated). */
static bool company_grew(const struct chan *c, uint64_t *heard)
{
	uint64_t now = c->company ? __atomic_load_n(c->company, __ATOMIC_RELAXED) : *heard;
	bool grew = now != *heard;

	*heard = now;
	return grew;
}

int chan_wait_ready(struct chan *c, short events)
{
	bool watch = events == POLLOUT && c->speaker;
	struct pollfd p[3] = { { .fd = c->fd, .events = events },
			       { .fd = c->cancel ? c->cancel->fd : -1, .events = POLLIN },
			       { .fd = watch ? c->speaker->fd : -1, .events = POLLIN } };
	uint64_t heard = c->company ? __atomic_load_n(c->company, __ATOMIC_RELAXED) : 0;
	int rc;

	for (;;) {
		int64_t left = deadline_left_ms(c);
		int ms = left >= 0 && left < c->timeout_ms ? (int)left : c->timeout_ms;

		if (left == 0)
			return deadline_passed(c);
		rc = poll(p, 3, ms);
		if (rc != 0 || (ms == c->timeout_ms && !company_grew(c, &heard)))
			break; /* ready, or a stall; else the deadline is near, or company heard */
	}
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	if (p[1].revents)
		return err_set(-ECANCELED, "cancelled");
	if (p[2].revents)
		return err_set(-ECONNABORTED, "the peer spoke while it should be reading");
	if (rc == 0)
		return err_set(-ETIMEDOUT, "the connection stalled for %.1f s",
			       c->timeout_ms / 1000.0);
	return 0;
}

/* Wait as the rate limit says before total bytes go out. */
static int pace(struct chan *c, const struct iovec *iov, int n)
{
	size_t total = 0;
	uint64_t wait;

	for (int k = 0; k < n; k++)
		total += iov[k].iov_len;
	wait = ratelimit_take(&c->rl, total, time_now_ns());
	if (wait && cancel_sleep_ns(c->cancel, wait))
		return err_set(-ECANCELED, "cancelled");
	c->write_wait_ns += wait;
	return 0;
}

/* Room for one fd in a message's control data. */
union fd_control {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* Attach fd to msg (SCM_RIGHTS). */
static void attach_fd(struct msghdr *msg, union fd_control *ctl, int fd)
{
	struct cmsghdr *cm;

	memset(ctl, 0, sizeof(*ctl));
	msg->msg_control = ctl->buf;
	msg->msg_controllen = sizeof(ctl->buf);
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

/* Write all of iov[0..n) through the socket's own copy; fd (unless -1)
 * goes with the first byte. */
static int send_copy(struct chan *c, const struct iovec *iov_in, int n, int fd)
{
	struct iovec iov[CHAN_MAX_IOV];
	union fd_control ctl;
	uint64_t wait;
	int i = 0;

	memcpy(iov, iov_in, (size_t)n * sizeof(*iov));
	while (i < n) {
		struct msghdr msg = { .msg_iov = iov + i, .msg_iovlen = (size_t)(n - i) };
		ssize_t w;

		int rc;

		if (fd >= 0)
			attach_fd(&msg, &ctl, fd);
		w = c->tls ? tls_session_send(c->tls, iov + i, n - i)
			   : sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && c->tls && w != -EAGAIN)
			return (int)w;
		if (w < 0) {
			if (!c->tls && errno != EAGAIN && errno != EINTR)
				return err_set(-errno, "the connection broke (%s)",
					       strerror(errno));
			wait = time_now_ns();
			rc = chan_wait_ready(c, c->tls ? tls_session_want(c->tls) : POLLOUT);
			c->write_wait_ns += time_now_ns() - wait;
			if (rc < 0)
				return rc;
			continue;
		}
		c->bytes_sent += (uint64_t)w;
		fd = -1; /* it went with the first byte */
		while (i < n && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < n) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

int chan_writev(struct chan *c, const struct iovec *iov, int n)
{
	int rc;

	if (n > CHAN_MAX_IOV)
		return -EINVAL;
	rc = pace(c, iov, n);
	return rc < 0 ? rc : send_copy(c, iov, n, -1);
}

int chan_writev_fd(struct chan *c, const struct iovec *iov, int n, int fd)
{
	if (c->tls)
		return err_set(-EINVAL, "a descriptor cannot go over TLS");
	return n > CHAN_MAX_IOV ? -EINVAL : send_copy(c, iov, n, fd);
}

static bool whole_pages(const struct iovec *v)
{
	return v->iov_len && !((uintptr_t)v->iov_base % FERRY_PAGE_SIZE) &&
	       !(v->iov_len % FERRY_PAGE_SIZE);
}

int chan_writev_ref(struct chan *c, const struct iovec *iov, int n)
{
	int from = 0, rc;

	if (!c->by_ref)
		return chan_writev(c, iov, n);
	if (n > CHAN_MAX_IOV)
		return -EINVAL;
	rc = pace(c, iov, n);
	/* Runs of other pieces by copy, each run of pages by reference. */
	for (int i = 0; rc == 0 && i <= n; i++) {
		if (i < n && !whole_pages(&iov[i]))
			continue;
		if (i > from)
			rc = send_copy(c, iov + from, i - from, -1);
		if (rc == 0 && i < n)
			rc = splice_pages(c, iov[i]);
		from = i + 1;
	}
	return rc;
}

int chan_readv(struct chan *c, struct iovec *iov, int n)
{
	for (;;) {
		struct msghdr msg = { 0 };
		ssize_t r;
		int rc;

		while (n > 0 && !iov->iov_len) { /* nothing to read there: a 0 would mean EOF */
			iov++;
			n--;
		}
		if (!n)
			return 0;
		if (deadline_left_ms(c) == 0) /* a peer that never lets a read wait */
			return deadline_passed(c);
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		r = c->tls ? tls_session_recv(c->tls, iov) : recvmsg(c->fd, &msg, MSG_DONTWAIT);

		if (r == 0)
			return err_set(-ECONNRESET, "the peer closed the connection");
		if (r < 0 && c->tls && r != -EAGAIN)
			return (int)r;
		if (r < 0) {
			if (!c->tls && errno != EAGAIN && errno != EINTR)
				return err_set(-errno, "the connection broke (%s)",
					       strerror(errno));
			if (c->waiting)
				__atomic_add_fetch(c->waiting, 1, __ATOMIC_RELAXED);
			rc = chan_wait_ready(c, c->tls ? tls_session_want(c->tls) : POLLIN);
			if (c->waiting)
				__atomic_sub_fetch(c->waiting, 1, __ATOMIC_RELAXED);
			if (rc < 0)
				return rc;
			continue;
		}
		c->bytes_received += (uint64_t)r;
		if (c->company)
			__atomic_add_fetch(c->company, (uint64_t)r, __ATOMIC_RELAXED);
		while (n > 0 && (size_t)r >= iov->iov_len) { /* the pieces it filled */
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
}

ssize_t chan_peek(struct chan *c, void *buf, size_t len)
{
	int rc = chan_wait_ready(c, POLLIN);
	ssize_t n = rc < 0 ? rc : recv(c->fd, buf, len, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && rc == 0)
		return err_set(-errno, "the connection broke (%s)", strerror(errno));
	return n;
}

int chan_read(struct chan *c, void *buf, size_t len)
{
	struct iovec v = { buf, len };

	return chan_readv(c, &v, 1);
}

/* The fd msg carries, or -1 (closed if it came cut short). */
static int fd_of(const struct msghdr *msg)
{
	struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg);
	int fd = -1;

	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fd >= 0 && (msg->msg_flags & MSG_CTRUNC)) {
		close(fd); /* more came than one: the kernel closed the others */
		fd = -1;
	}
	return fd;
}

int chan_read_fd(struct chan *c, void *buf, size_t len, int *fd)
{
	union fd_control ctl;
	struct iovec v = { buf, len };
	struct msghdr msg = { .msg_iov = &v,
			      .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	ssize_t r;
	int rc;

	*fd = -1;
	if (c->tls)
		return err_set(-EPROTO, "a descriptor cannot come over TLS");
	while ((r = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return err_set(-errno, "the connection broke (%s)", strerror(errno));
		rc = chan_wait_ready(c, POLLIN);
		if (rc < 0)
			return rc;
	}
	if (r == 0)
		return err_set(-ECONNRESET, "the peer closed the connection");
	c->bytes_received += (uint64_t)r;
	*fd = fd_of(&msg);
	if (*fd < 0)
		return err_set(-EPROTO, "no file descriptor came where one was due (a unix socket "
					"carries them; this connection did not)");
	rc = chan_read(c, (char *)buf + r, len - (size_t)r);
	if (rc < 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

uint64_t chan_queued(const struct chan *c)
{
	int n = 0;

	return ioctl(c->fd, SIOCOUTQ, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

void chan_shutdown(struct chan *c)
{
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

void chan_shutdown_read(struct chan *c)
{
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RD);
}

void chan_close(struct chan *c)
{
	tls_session_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	splice_close(c);
}

bool chan_broken(int rc)
{
	switch (-rc) {
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case EPIPE:
	case ETIMEDOUT:
	case ENOTCONN:
	case ENETDOWN:
	case ENETUNREACH:
	case ENETRESET:
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return true;
	}
	return false;
}
