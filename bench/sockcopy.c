/* The ruler for migration throughput: copy N bytes of memory from one
 * process to another over a plain socket, as fast as the transport allows.
 *   sockcopy URI BYTES            fork a receiver on URI, send, print MB/s
 *   sockcopy recv URI BYTES       only receive (e.g. in another namespace)
 *   sockcopy send URI BYTES       only send to a receiver; print MB/s
 * URI is tcp:HOST:PORT or unix:PATH. Uses ferry's own channel code, so the
 * socket options match the migration's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/chan.h"
#include "util/error.h"
#include "util/size.h"
#include "util/time.h"

#define CHUNK (1 << 20)

/* Private anonymous memory like guest RAM, touched before the clock starts. */
static uint8_t *buffer(uint64_t bytes)
{
	uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	memset(p, 0x5a, bytes); /* touched, like guest memory */
	return p;
}

static int receive(const char *uri, int lfd, uint64_t bytes)
{
	uint8_t *dst = buffer(bytes);
	struct chan c;

	if (chan_accept(&c, lfd, uri, 30000, NULL) < 0)
		return 1;
	c.timeout_ms = 30000;
	if (chan_writev(&c, &(struct iovec){ "r", 1 }, 1) < 0) /* ready: start the clock */
		return 1;
	for (uint64_t off = 0; off < bytes; off += CHUNK)
		if (chan_read(&c, dst + off, CHUNK) < 0)
			return 1;
	/* Tell the sender it all arrived, before this process's teardown. */
	return chan_writev(&c, &(struct iovec){ "k", 1 }, 1) < 0;
}

/* Connect (retrying while the receiver starts), send, print MB/s. */
static int send_all(const char *uri, uint64_t bytes)
{
	uint8_t *src = buffer(bytes), ack;
	uint64_t start;
	struct chan c;
	int tries = 0;

	while (chan_connect(&c, uri, 10000, NULL) < 0) {
		if (++tries > 100) {
			fprintf(stderr, "sockcopy: %s\n", err_msg());
			return 1;
		}
		time_sleep_ns(50 * NS_PER_MS);
	}
	c.timeout_ms = 30000;
	if (chan_read(&c, &ack, 1) < 0)
		return 1;
	start = time_now_ns();
	for (uint64_t off = 0; off < bytes; off += CHUNK) {
		struct iovec iov = { src + off, CHUNK };

		if (chan_writev(&c, &iov, 1) < 0)
			return 1;
	}
	if (chan_read(&c, &ack, 1) < 0)
		return 1;
	printf("%.1f\n", (double)bytes / ((double)(time_now_ns() - start) / 1e9) / 1e6);
	return 0;
}

static int listen_on(const char *uri)
{
	int lfd = chan_listen(uri);

	if (lfd < 0)
		fprintf(stderr, "sockcopy: %s\n", err_msg());
	return lfd;
}

int main(int argc, char **argv)
{
	const char *mode = argc == 4 ? argv[1] : "both", *uri = argv[argc - 2];
	uint64_t bytes;
	int lfd, status, rc;
	pid_t pid;

	if ((argc != 3 && argc != 4) || size_parse(argv[argc - 1], &bytes) < 0 || bytes % CHUNK) {
		fprintf(stderr, "usage: sockcopy [recv|send] URI BYTES (a multiple of 1M)\n");
		return 2;
	}
	if (!strcmp(mode, "send"))
		return send_all(uri, bytes);
	lfd = listen_on(uri);
	if (lfd < 0)
		return 1;
	if (!strcmp(mode, "recv"))
		return receive(uri, lfd, bytes);
	pid = fork();
	if (pid == 0)
		return receive(uri, lfd, bytes);
	rc = send_all(uri, bytes);
	waitpid(pid, &status, 0);
	return rc ? rc : WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
