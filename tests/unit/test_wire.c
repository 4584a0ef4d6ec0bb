/* Records on a channel (migration/wire.h) over a real socket pair: framing
 * and padding, skipping of optional records (checked all the same), every
 * kind of damage refused, and the channel's stall timeout and cancel. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "migration/wire.h"
#include "stream/record.h"
#include "util/cancel.h"
#include "util/error.h"

struct pair {
	struct chan a, b;
	struct wire_buf buf;
};

static int setup(void **state)
{
	static struct pair p;
	int fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0);
	memset(&p, 0, sizeof(p));
	chan_init_fd(&p.a, fd[0]);
	chan_init_fd(&p.b, fd[1]);
	p.b.timeout_ms = 2000;
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	chan_close(&p->a);
	chan_close(&p->b);
	wire_buf_free(&p->buf);
	return 0;
}

/* Write raw bytes, as a broken or hostile peer would. */
static void raw(struct chan *c, const void *bytes, size_t len)
{
	struct iovec iov = { (void *)bytes, len };

	assert_int_equal(chan_writev(c, &iov, 1), 0);
}

static void test_round_trip(void **state)
{
	struct pair *p = *state;
	struct rec_round r = { .round = 7, .pages = 99 }, got;
	uint8_t state_blob[13] = "hello, world";
	struct iovec two[2] = { { state_blob, 5 }, { state_blob + 5, 8 } };
	struct rec_header hdr;

	assert_int_equal(wire_send(&p->a, REC_ROUND, &(struct iovec){ &r, sizeof(r) }, 1), 0);
	assert_int_equal(wire_send(&p->a, REC_STATE, two, 2), 0);
	assert_int_equal(wire_send_empty(&p->a, REC_END), 0);
	/* 16-byte headers, bodies padded to 8 bytes. */
	assert_int_equal(p->a.bytes_sent, 16 + 16 + 16 + 16 + 16);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), 0);
	assert_int_equal(hdr.type, REC_ROUND);
	assert_int_equal(rec_parse_round(p->buf.data, hdr.length, &got), 0);
	assert_int_equal(got.round, 7);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), 0);
	assert_int_equal(hdr.type, REC_STATE);
	assert_int_equal(hdr.length, 13);
	assert_memory_equal(p->buf.data, "hello, world", 13);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), 0);
	assert_int_equal(hdr.type, REC_END);
}

/* An optional record the reader does not know is skipped, but checked:
 * a damaged one is refused like any other. */
static void test_optional_records(void **state)
{
	struct pair *p = *state;
	uint8_t body[24] = { 1, 2, 3 };
	struct iovec iov = { body, sizeof(body) };
	struct rec_header hdr;
	uint8_t rec[16 + 24];

	assert_int_equal(wire_send(&p->a, REC_OPTIONAL | 99, &iov, 1), 0);
	assert_int_equal(wire_send_empty(&p->a, REC_END), 0);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), 0);
	assert_int_equal(hdr.type, REC_END);
	rec_header_init(&hdr, REC_OPTIONAL | 99, &iov, 1);
	memcpy(rec, &hdr, 16);
	memcpy(rec + 16, body, 24);
	rec[20] ^= 1;
	raw(&p->a, rec, sizeof(rec));
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -EINVAL);
	assert_non_null(strstr(err_msg(), "checksum"));
}

static void test_damage_refused(void **state)
{
	struct pair *p = *state;
	struct rec_round r = { .round = 1 };
	struct iovec iov = { &r, sizeof(r) };
	struct rec_header hdr;

	rec_header_init(&hdr, 77, &iov, 1); /* unknown and mandatory */
	raw(&p->a, &hdr, sizeof(hdr));
	raw(&p->a, &r, sizeof(r));
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -EINVAL);
	assert_non_null(strstr(err_msg(), "unknown type"));
}

static void test_length_refused_before_body(void **state)
{
	struct pair *p = *state;
	struct rec_header hdr = { .type = REC_PAGES, .length = REC_MAX_BODY };

	raw(&p->a, &hdr, sizeof(hdr)); /* no body follows: it is not waited for */
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -EINVAL);
	assert_non_null(strstr(err_msg(), "PAGES record has a bad length"));
}

static void test_truncated(void **state)
{
	struct pair *p = *state;
	struct rec_round r = { .round = 1 };
	struct rec_header hdr;

	rec_header_init(&hdr, REC_ROUND, &(struct iovec){ &r, sizeof(r) }, 1);
	raw(&p->a, &hdr, sizeof(hdr));
	raw(&p->a, &r, 4);
	shutdown(p->a.fd, SHUT_WR);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -ECONNRESET);
	assert_non_null(strstr(err_msg(), "closed"));
}

static void test_stall_times_out(void **state)
{
	struct pair *p = *state;
	struct rec_header hdr;

	p->b.timeout_ms = 100;
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -ETIMEDOUT);
	assert_non_null(strstr(err_msg(), "stalled for 0.1 s"));
}

static void *fire_later(void *arg)
{
	usleep(50 * 1000);
	cancel_fire(arg);
	return NULL;
}

/* A cancel ends a blocked read without touching the socket. */
static void test_cancel(void **state)
{
	struct pair *p = *state;
	struct rec_header hdr;
	struct cancel c;
	pthread_t t;

	assert_int_equal(cancel_init(&c), 0);
	p->b.cancel = &c;
	p->b.timeout_ms = 60000;
	pthread_create(&t, NULL, fire_later, &c);
	assert_int_equal(wire_recv(&p->b, &hdr, &p->buf), -ECANCELED);
	pthread_join(t, NULL);
	assert_true(cancel_fired(&c));
	cancel_reset(&c);
	assert_false(cancel_fired(&c));
	cancel_destroy(&c);
	p->b.cancel = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_optional_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_length_refused_before_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
