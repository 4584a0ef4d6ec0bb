#include "migration/plan/copyrate.h"

#include <netinet/in.h>
#include <pthread.h>
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

double copy_rate_bps(const uint8_t *pages, size_t npages, uint64_t bytes)
{
	volatile uint64_t sink = 0;
	pthread_t reader;
	uint64_t t0;
	int64_t sent;
	int fds[2];

	if (!npages || loopback_pair(fds) < 0)
		return 0;
	if (pthread_create(&reader, NULL, drain, &fds[1])) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	t0 = time_now_ns();
	sent = send_pages(fds[0], pages, npages, bytes, &sink);
	shutdown(fds[0], SHUT_WR);
	pthread_join(reader, NULL);
	close(fds[0]);
	close(fds[1]);
	return sent < 0 ? 0 : (double)sent * 1e9 / (double)(time_now_ns() - t0);
}
