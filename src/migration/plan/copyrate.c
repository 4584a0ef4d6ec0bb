#include "migration/plan/copyrate.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/send/batch.h"
#include "util/hash.h"
#include "util/page.h"
#include "util/time.h"

static void *drain(void *arg)
{
	uint8_t buf[1 << 16];
	int fd = *(int *)arg;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* A connected loopback TCP pair: fds[0] writes, fds[1] reads. */
static int loopback_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l >= 0 && fds[0] >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    listen(l, 1) == 0 && getsockname(l, (struct sockaddr *)&a, &len) == 0 &&
	    connect(fds[0], (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    (fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		rc = 0;
	if (l >= 0)
		close(l);
	if (rc < 0 && fds[0] >= 0)
		close(fds[0]);
	return rc;
}

/* Hash and write batches until at least bytes went: how many, or -1 if the
 * socket failed. */
static int64_t send_pages(int fd, const uint8_t *pages, size_t npages, uint64_t bytes,
			  volatile uint64_t *sink)
{
	uint64_t sent = 0;

	while (sent < bytes) {
		for (size_t at = 0; at < npages; at += BATCH_PAGES) {
			size_t n = npages - at < BATCH_PAGES ? npages - at : BATCH_PAGES;
			const uint8_t *p = pages + at * FERRY_PAGE_SIZE;

			for (size_t i = 0; i < n; i++)
				*sink ^= hash64(p + i * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
			for (size_t off = 0; off < n * FERRY_PAGE_SIZE;) {
				ssize_t w = write(fd, p + off, n * FERRY_PAGE_SIZE - off);

				if (w <= 0)
					return -1;
				off += (size_t)w;
			}
			sent += n * FERRY_PAGE_SIZE;
		}
	}
	return (int64_t)sent;
}

/* One sender and its reader. */
struct copy_lane {
	int fds[2];
	pthread_t reader, sender;
	const uint8_t *pages;
	size_t npages;
	uint64_t bytes;
	int64_t sent;
};

static void *send_lane(void *arg)
{
	struct copy_lane *l = arg;
	volatile uint64_t sink = 0;

	l->sent = send_pages(l->fds[0], l->pages, l->npages, l->bytes, &sink);
	shutdown(l->fds[0], SHUT_WR);
	return NULL;
}

/* Connect lane l and start its reader; -1 if that failed (nothing open). */
static int open_lane(struct copy_lane *l)
{
	if (loopback_pair(l->fds) < 0)
		return -1;
	if (pthread_create(&l->reader, NULL, drain, &l->fds[1]) == 0)
		return 0;
	close(l->fds[0]);
	close(l->fds[1]);
	return -1;
}

static void close_lane(struct copy_lane *l)
{
	pthread_join(l->reader, NULL);
	close(l->fds[0]);
	close(l->fds[1]);
}

double copy_rate_bps(const uint8_t *pages, size_t npages, uint64_t bytes, unsigned senders)
{
	struct copy_lane lanes[COPY_SENDERS_MAX];
	unsigned open = 0, started = 0;
	uint64_t sent = 0, t0;
	bool ok;

	senders = senders < 1 ? 1 : senders > COPY_SENDERS_MAX ? COPY_SENDERS_MAX : senders;
	for (; npages && open < senders; open++) {
		lanes[open] = (struct copy_lane){ .pages = pages,
						  .npages = npages,
						  .bytes = bytes / senders };
		if (open_lane(&lanes[open]) < 0)
			break;
	}
	t0 = time_now_ns();
	for (; open == senders && started < open; started++)
		if (pthread_create(&lanes[started].sender, NULL, send_lane, &lanes[started]))
			break;
	ok = started == senders; /* else a lane failed to open or to start */
	for (unsigned i = 0; i < open; i++) {
		if (i < started)
			pthread_join(lanes[i].sender, NULL);
		else
			shutdown(lanes[i].fds[0], SHUT_WR); /* its reader ends */
		ok = ok && lanes[i].sent >= 0;
		sent += ok ? (uint64_t)lanes[i].sent : 0;
		close_lane(&lanes[i]);
	}
	return ok ? (double)sent * 1e9 / (double)(time_now_ns() - t0) : 0;
}
