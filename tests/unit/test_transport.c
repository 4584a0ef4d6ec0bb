/* Migration addresses, the rate limiter, pages by reference, and the
 * company that keeps a silent channel from timing out. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "transport/chan.h"
#include "transport/ratelimit.h"
#include "transport/splice.h"
#include "transport/uri.h"
#include "util/error.h"
#include "util/size.h"
#include "util/time.h"

static void test_uri(void **unused)
{
	struct uri u;

	(void)unused;
	assert_int_equal(uri_parse("tcp:127.0.0.1:4444", &u), 0);
	assert_int_equal(u.kind, URI_TCP);
	assert_string_equal(u.host, "127.0.0.1");
	assert_string_equal(u.port, "4444");
	assert_int_equal(uri_parse("tcp:[::1]:80", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(uri_parse("unix:/tmp/x.sock", &u), 0);
	assert_string_equal(u.path, "/tmp/x.sock");
	assert_int_equal(uri_parse("fd:7", &u), 0);
	assert_int_equal(u.fd, 7);
	assert_int_equal(uri_parse("tcp:host", &u), -EINVAL);
	assert_non_null(strstr(err_msg(), "no port"));
	assert_int_equal(uri_parse("tcp:host:99999", &u), -EINVAL);
	assert_int_equal(uri_parse("tcp::80", &u), -EINVAL);
	assert_int_equal(uri_parse("tcp:[::1:80", &u), -EINVAL);
	assert_int_equal(uri_parse("unix:", &u), -EINVAL);
	assert_int_equal(uri_parse("fd:x", &u), -EINVAL);
	assert_int_equal(uri_parse("http://x", &u), -EINVAL);
	assert_non_null(strstr(err_msg(), "tcp:HOST:PORT, unix:PATH or fd:N"));
}

static void test_rate_parse(void **unused)
{
	uint64_t b;

	(void)unused;
	assert_int_equal(rate_parse("100M", &b), 0);
	assert_int_equal(b, 100ull << 20);
	assert_int_equal(rate_parse("1Gbit", &b), 0);
	assert_int_equal(b, 125000000);
	assert_int_equal(rate_parse("100mbit", &b), 0);
	assert_int_equal(b, 12500000);
	assert_int_equal(rate_parse("8bit", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(rate_parse("1Xbit", &b), -EINVAL);
	assert_int_equal(rate_parse("bit", &b), -EINVAL);
	assert_int_equal(rate_parse("fast", &b), -EINVAL);
}

/* Over a long run the limiter lets through rate x time, whatever the chunks. */
static void test_ratelimit_average(void **unused)
{
	struct ratelimit rl;
	uint64_t now = 1000000000, sent = 0;

	(void)unused;
	ratelimit_init(&rl, 100 << 20);
	while (now < 11000000000ull) { /* 10 simulated seconds */
		now += ratelimit_take(&rl, 1 << 20, now);
		sent += 1 << 20;
	}
	/* 10 s at 100 MiB/s, plus the initial 50 ms burst */
	assert_true(sent >= 1000ull << 20 && sent <= 1010ull << 20);
	ratelimit_init(&rl, 0);
	assert_int_equal(ratelimit_take(&rl, 1ull << 40, now), 0);
}

/* A connected pair of channels on uri: tx connects, rx accepts. */
static void pair(const char *uri, struct chan *tx, struct chan *rx)
{
	int lfd = chan_listen(uri);

	assert_true(lfd >= 0);
	assert_int_equal(chan_connect(tx, uri, 5000, NULL), 0);
	assert_int_equal(chan_accept(rx, lfd, uri, 5000, NULL), 0);
	close(lfd);
}

/* Over a unix socket, whole pages go by reference and the rest by copy, in
 * order: the peer reads the pages as memory holds them when it reads. */
static void test_by_reference(void **unused)
{
	enum {
		PAGES = 16,
		LEN = 8 + PAGES * 4096 + 5
	};
	uint8_t *mem = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	uint8_t head[8] = "head....", tail[5] = "tail!", *got = malloc(LEN);
	struct iovec iov[3] = { { head, 8 }, { mem, PAGES * 4096 }, { tail, 5 } };
	char uri[64];
	struct chan tx, rx;

	(void)unused;
	assert_true(mem != MAP_FAILED && got);
	snprintf(uri, sizeof(uri), "unix:/tmp/ferry-test-ref-%d.sock", getpid());
	pair(uri, &tx, &rx);
	unlink(uri + 5);
	assert_true(tx.by_ref);
	memset(mem, 0xa5, PAGES * 4096);
	assert_int_equal(chan_writev_ref(&tx, iov, 3), 0);
	assert_int_equal(tx.bytes_sent, LEN);
	mem[4096] = 0x5a; /* after the write, before the read */
	assert_int_equal(chan_read(&rx, got, LEN), 0);
	assert_memory_equal(got, head, 8);
	assert_int_equal(got[8], 0xa5);
	assert_int_equal(got[8 + 4096], 0x5a);
	assert_memory_equal(got + LEN - 5, tail, 5);
	chan_close(&tx);
	chan_close(&rx);
	munmap(mem, PAGES * 4096);
	free(got);
}

/* Over TCP the socket copies: splicing pages into loopback TCP measured
 * slower than its copy here (docs/migration.md, "Copies"). A socket that
 * blocks neither: its waits would not see the timeout or the cancel. */
static void test_copy_elsewhere(void **unused)
{
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), sv[2];

	(void)unused;
	assert_true(tcp >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_false(splice_suits(tcp));
	assert_false(splice_suits(sv[0]));
	close(tcp);
	close(sv[0]);
	close(sv[1]);
}

#define SILENT_MS 500

/* Channels in company: main and data, each a socketpair's reading end. */
struct company {
	int main_tx, data_tx;
	struct chan main, data;
	uint64_t heard;
};

static void company_open(struct company *k)
{
	int m[2], d[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, m), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, d), 0);
	chan_init_fd(&k->main, m[0]);
	chan_init_fd(&k->data, d[0]);
	k->main_tx = m[1];
	k->data_tx = d[1];
	k->heard = 0;
	k->main.company = k->data.company = &k->heard;
	k->main.timeout_ms = SILENT_MS;
}

/* The data channel hears a byte at a time for four of main's timeouts,
 * then main hears its record. */
static void *busy_data(void *arg)
{
	struct company *k = arg;
	uint64_t end = time_now_ns() + 4ull * SILENT_MS * NS_PER_MS;
	uint8_t b = 1;

	while (time_now_ns() < end) {
		assert_int_equal(write(k->data_tx, &b, 1), 1);
		assert_int_equal(chan_read(&k->data, &b, 1), 0);
	}
	assert_int_equal(write(k->main_tx, "END!", 4), 4);
	return NULL;
}

/* Main's silence is no stall while its data channel hears the peer; once
 * none of them hears anything, it is. */
/* A descriptor goes with the first byte of a write (local migration's
 * MEMFD); a read that wants one and gets none says so; one that does not
 * want one is unaffected by what came before. */
static void test_fd_passing(void **unused)
{
	char uri[64], got[8];
	struct chan tx, rx;
	struct iovec iov[2] = { { "abcd", 4 }, { "efgh", 4 } };
	struct stat a, b;
	int fd;

	(void)unused;
	snprintf(uri, sizeof(uri), "unix:/tmp/ferry-test-fd-%d.sock", getpid());
	pair(uri, &tx, &rx);
	unlink(uri + 5);
	assert_true(chan_uri_is_unix(uri));
	assert_false(chan_uri_is_unix("tcp:127.0.0.1:1"));
	assert_int_equal(chan_writev_fd(&tx, iov, 2, tx.fd), 0);
	assert_int_equal(chan_read_fd(&rx, got, 8, &fd), 0);
	assert_memory_equal(got, "abcdefgh", 8);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(tx.fd, &b), 0);
	assert_true(a.st_ino == b.st_ino); /* the same socket, as a new descriptor */
	close(fd);
	assert_int_equal(chan_writev(&tx, iov, 1), 0);
	assert_int_equal(chan_read_fd(&rx, got, 4, &fd), -EPROTO);
	assert_int_equal(fd, -1);
	chan_close(&tx);
	chan_close(&rx);
}

static void test_company(void **unused)
{
	struct company k;
	pthread_t t;
	char got[4];

	(void)unused;
	company_open(&k);
	assert_int_equal(pthread_create(&t, NULL, busy_data, &k), 0);
	assert_int_equal(chan_read(&k.main, got, 4), 0);
	assert_memory_equal(got, "END!", 4);
	pthread_join(t, NULL);
	assert_true(k.heard > 4);
	assert_int_equal(chan_read(&k.main, got, 1), -ETIMEDOUT);
	assert_string_equal(err_msg(), "the connection stalled for 0.5 s");
	chan_close(&k.main);
	chan_close(&k.data);
	close(k.main_tx);
	close(k.data_tx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_ratelimit_average),
		cmocka_unit_test(test_by_reference),
		cmocka_unit_test(test_copy_elsewhere),
		cmocka_unit_test(test_company),
		cmocka_unit_test(test_fd_passing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
