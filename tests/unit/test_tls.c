/* TLS on a channel (transport/tls.h), with real OpenSSL over a socket pair
 * and credentials tests/tls/make-creds.sh makes: mutual x509 and PSK
 * carry a stream intact both ways; a peer under another CA (either side),
 * an expired certificate, a wrong name, an identity authz does not list, a wrong PSK and a peer
 * that does not speak TLS are refused, each with a sentence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/chan.h"
#include "transport/tls.h"
#include "util/error.h"

#define STREAM (3u << 20)

static char creds[256];

struct side {
	struct chan c;
	const char *dir, *authz, *hostname;
	enum tls_role role;
	int rc;
	char err[512];
	char peer[TLS_NAME_MAX];
};

static void *handshake(void *arg)
{
	struct side *s = arg;
	struct tls_creds *t = NULL;
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/%s", creds, s->dir);
	s->rc = tls_creds_load(&(struct tls_config){ dir, s->authz, s->hostname }, s->role, &t);
	if (s->rc == 0)
		s->rc = chan_start_tls(&s->c, t, NULL);
	if (s->rc == 0)
		snprintf(s->peer, sizeof(s->peer), "%s", tls_session_peer(s->c.tls));
	else
		snprintf(s->err, sizeof(s->err), "%s", err_msg());
	if (s->rc < 0)
		chan_shutdown(&s->c); /* the other side's handshake ends too */
	tls_creds_free(t);	      /* the session keeps what it needs */
	return NULL;
}

/* Both handshakes at once on a socket pair. */
static void pair(struct side *dst, struct side *src)
{
	pthread_t t;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	chan_init_fd(&dst->c, sv[0]);
	chan_init_fd(&src->c, sv[1]);
	dst->c.timeout_ms = src->c.timeout_ms = 5000;
	dst->role = TLS_SERVER;
	src->role = TLS_CLIENT;
	assert_int_equal(pthread_create(&t, NULL, handshake, dst), 0);
	handshake(src);
	pthread_join(t, NULL);
}

static void *send_stream(void *arg)
{
	struct chan *c = arg;
	static uint8_t data[STREAM];
	size_t large = STREAM / 2 + 100, off = 16 + large + 24;
	struct iovec iov[5];

	for (size_t i = 0; i < STREAM; i++)
		data[i] = (uint8_t)(i * 7 + i / 4096);
	/* As a record goes: a header-sized piece, an empty one, a large one
	 * (sent in place, whole TLS records of it; its tail not a whole
	 * record), a small one (copied together with that tail), and the
	 * rest. */
	iov[0] = (struct iovec){ data, 16 };
	iov[1] = (struct iovec){ data + 16, 0 };
	iov[2] = (struct iovec){ data + 16, large };
	iov[3] = (struct iovec){ data + 16 + large, 24 };
	iov[4] = (struct iovec){ data + off, STREAM - off };
	assert_int_equal(chan_writev(c, iov, 5), 0);
	return NULL;
}

/* STREAM bytes from src to dst, then a reply back: intact. */
static void carries(struct side *dst, struct side *src)
{
	static uint8_t got[STREAM];
	pthread_t t;
	uint8_t reply = 0;

	assert_int_equal(pthread_create(&t, NULL, send_stream, &src->c), 0);
	assert_int_equal(chan_read(&dst->c, got, STREAM), 0);
	pthread_join(t, NULL);
	for (size_t i = 0; i < STREAM; i++)
		if (got[i] != (uint8_t)(i * 7 + i / 4096))
			fail_msg("byte %zu differs", i);
	assert_int_equal(chan_writev(&dst->c, &(struct iovec){ "!", 1 }, 1), 0);
	assert_int_equal(chan_read(&src->c, &reply, 1), 0);
	assert_int_equal(reply, '!');
	assert_int_equal(dst->c.bytes_received, STREAM);
}

static void done(struct side *dst, struct side *src)
{
	chan_close(&dst->c);
	chan_close(&src->c);
}

static void test_x509(void **unused)
{
	struct side dst = { .dir = "x509", .authz = "ferry-source" },
		    src = { .dir = "x509", .hostname = "ferry-dest" };

	(void)unused;
	pair(&dst, &src);
	assert_int_equal(dst.rc, 0);
	assert_int_equal(src.rc, 0);
	assert_string_equal(dst.peer, "ferry-source");
	assert_string_equal(src.peer, "ferry-dest");
	carries(&dst, &src);
	done(&dst, &src);
}

static void test_psk(void **unused)
{
	struct side dst = { .dir = "psk" }, src = { .dir = "psk" };

	(void)unused;
	pair(&dst, &src);
	assert_int_equal(dst.rc, 0);
	assert_int_equal(src.rc, 0);
	assert_string_equal(dst.peer, "ferry-source");
	carries(&dst, &src);
	done(&dst, &src);
}

/* Refused on side who (dst or src), saying words. */
static void refused(const char *dst_dir, const char *src_dir, const char *authz,
		    const char *hostname, bool by_dst, const char *words)
{
	struct side dst = { .dir = dst_dir, .authz = authz },
		    src = { .dir = src_dir, .hostname = hostname };
	struct side *who = by_dst ? &dst : &src;

	pair(&dst, &src);
	assert_true(dst.rc < 0 || src.rc < 0);
	assert_true(who->rc < 0);
	if (!strstr(who->err, words))
		fail_msg("expected '%s' in: %s", words, who->err);
	done(&dst, &src);
}

static void test_refusals(void **unused)
{
	(void)unused;
	refused("x509", "x509-stranger", NULL, NULL, false, "the peer's certificate is refused");
	refused("x509-stranger", "x509", NULL, NULL, false, "the peer's certificate is refused");
	refused("x509", "x509-rogue", NULL, NULL, true, "the peer's certificate is refused");
	refused("x509", "x509-expired", NULL, NULL, true,
		"the peer's certificate is refused: certificate has expired");
	refused("x509", "x509", NULL, "someone-else", false,
		"the peer's certificate is refused: hostname mismatch");
	refused("x509", "x509", "ferry-other,admin", NULL, true,
		"the peer 'ferry-source' is not one --tls-authz lets in");
	refused("psk", "psk-wrong", NULL, NULL, true, "TLS: the handshake failed");
}

/* A peer that sends a ferry stream's first bytes in the clear. */
static void test_plaintext_peer(void **unused)
{
	struct side dst = { .dir = "x509", .role = TLS_SERVER };
	pthread_t t;
	int sv[2];

	(void)unused;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	chan_init_fd(&dst.c, sv[0]);
	dst.c.timeout_ms = 5000;
	assert_int_equal(pthread_create(&t, NULL, handshake, &dst), 0);
	assert_int_equal(write(sv[1], "ERRYMIG1\4\0\0\0\4\3\2\1", 16), 16);
	pthread_join(t, NULL);
	assert_true(dst.rc < 0);
	assert_non_null(strstr(dst.err, "TLS"));
	chan_close(&dst.c);
	close(sv[1]);
}

static void test_missing_creds(void **unused)
{
	struct tls_creds *t = NULL;

	(void)unused;
	assert_int_equal(tls_creds_load(&(struct tls_config){ "/nonexistent" }, TLS_SERVER, &t),
			 -ENOENT);
	assert_non_null(strstr(err_msg(), "neither ca-cert.pem (x509) nor keys.psk (PSK)"));
}

static int make_creds(void **unused)
{
	const char *script = getenv("MAKE_TLS_CREDS");
	char cmd[1024];

	(void)unused;
	snprintf(creds, sizeof(creds), "/tmp/ferry-test-tls-XXXXXX");
	if (!script || !mkdtemp(creds))
		return -1;
	snprintf(cmd, sizeof(cmd), "%s %s", script, creds);
	return system(cmd) == 0 ? 0 : -1;
}

static int remove_creds(void **unused)
{
	char cmd[512];

	(void)unused;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", creds);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x509),	      cmocka_unit_test(test_psk),
		cmocka_unit_test(test_refusals),      cmocka_unit_test(test_plaintext_peer),
		cmocka_unit_test(test_missing_creds),
	};

	return cmocka_run_group_tests(tests, make_creds, remove_creds);
}
