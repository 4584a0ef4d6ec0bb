/* The sender's page pipeline (send/pipeline.h) against a real receiving
 * end: batches on the main channel, raw or compressed (or raw when they do
 * not shrink); data channels that join with the token, share the batches,
 * end each round with their own page counts, and stop at the first failure
 * with its sentence. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "codec/compress.h"
#include "migration/handshake.h"
#include "migration/send/pipeline.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/hash.h"

#define PAGE FERRY_PAGE_SIZE

/* n pages into b's own buffer, gfn first.. (text-like, so they compress,
 * or random); a copy of the payload in expect, if not NULL. */
static void fill(struct batch *b, uint32_t n, uint64_t first, uint32_t round, bool random,
		 uint8_t *expect)
{
	batch_reset(b, round);
	for (uint32_t i = 0; i < n; i++) {
		for (unsigned k = 0; k < PAGE; k++)
			b->buf[i * PAGE + k] =
				random ? (uint8_t)rand() : (uint8_t)("ferry "[k % 6] + i % 3);
		b->entries[b->count++] = PAGE_ENTRY(first + i, PAGE_RAW);
	}
	b->iov[0] = (struct iovec){ b->buf, (size_t)n * PAGE };
	b->niov = 1;
	b->payload_len = n * PAGE;
	if (expect)
		memcpy(expect, b->buf, (size_t)n * PAGE);
}

static void params(struct mig_params *p, uint32_t channels, enum compress_kind kind)
{
	mig_params_default(p);
	p->channels = channels;
	p->compress.kind = kind;
}

/* No data channels: the batch goes on the main channel at submit. */
static void test_main_channel(void **unused)
{
	struct mig_params p;
	struct pipeline *pipe;
	struct chan main, peer;
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct pages_view v;
	struct batch *b;
	struct mig_stats st = { 0 };
	static uint8_t expect[4 * PAGE];
	int fd[2];

	(void)unused;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	chan_init_fd(&main, fd[0]);
	chan_init_fd(&peer, fd[1]);
	params(&p, 0, COMPRESS_NONE);
	assert_int_equal(pipeline_open("unix:/nowhere", &main, &p, NULL, NULL, NULL, &pipe), 0);
	assert_int_equal(pipeline_batch(pipe, &b), 0);
	fill(b, 4, 10, 0, false, expect);
	assert_int_equal(pipeline_submit(pipe, b), 0);
	assert_int_equal(wire_recv(&peer, &hdr, &buf), 0);
	assert_int_equal(hdr.type, REC_PAGES);
	assert_int_equal(rec_parse_pages(buf.data, hdr.length, 1024, &v), 0);
	assert_int_equal(v.count, 4);
	assert_int_equal(PAGE_ENTRY_GFN(v.entries[3]), 13);
	assert_memory_equal(v.payload, expect, 4 * PAGE);
	pipeline_stats(pipe, &st);
	assert_int_equal(st.chan[0].batches, 1);
	assert_int_equal(st.chan[0].raw_bytes, 4 * PAGE);
	pipeline_close(pipe);
	wire_buf_free(&buf);
	chan_close(&main);
	chan_close(&peer);
}

/* zstd: a batch that shrinks goes as ZPAGES whose frame decompresses to
 * the pages; one that does not (random) goes raw and counts as skipped. */
static void test_compression(void **unused)
{
	struct mig_params p;
	struct pipeline *pipe;
	struct chan main, peer;
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct zpages_view z;
	struct compressor d = { 0 };
	static uint8_t out[BATCH_PAGES * PAGE], expect[8 * PAGE];
	struct batch *b;
	struct mig_stats st = { 0 };
	int fd[2];

	(void)unused;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	chan_init_fd(&main, fd[0]);
	chan_init_fd(&peer, fd[1]);
	params(&p, 0, COMPRESS_ZSTD);
	assert_int_equal(pipeline_open("unix:/nowhere", &main, &p, NULL, NULL, NULL, &pipe), 0);
	assert_int_equal(pipeline_batch(pipe, &b), 0);
	fill(b, 8, 0, 0, false, expect);
	assert_int_equal(pipeline_submit(pipe, b), 0);
	assert_int_equal(wire_recv(&peer, &hdr, &buf), 0);
	assert_int_equal(hdr.type, REC_ZPAGES);
	assert_int_equal(rec_parse_zpages(buf.data, hdr.length, 1024, &z), 0);
	assert_int_equal(z.codec, COMPRESS_ZSTD);
	assert_true(z.frame_len < 8 * PAGE / 4);
	assert_int_equal(compressor_init(&d, COMPRESS_ZSTD, 1), 0);
	assert_int_equal(d.backend->decompress(&d, z.frame, z.frame_len, out, 8 * PAGE), 0);
	assert_memory_equal(out, expect, 8 * PAGE);
	assert_int_equal(hash64(out, 8 * PAGE), z.payload_hash);
	assert_int_equal(pipeline_batch(pipe, &b), 0);
	fill(b, 8, 0, 0, true, NULL);
	assert_int_equal(pipeline_submit(pipe, b), 0);
	assert_int_equal(wire_recv(&peer, &hdr, &buf), 0);
	assert_int_equal(hdr.type, REC_PAGES);
	pipeline_stats(pipe, &st);
	assert_int_equal(st.chan[0].compressed, 1);
	assert_int_equal(st.chan[0].skipped, 1);
	compressor_free(&d);
	pipeline_close(pipe);
	wire_buf_free(&buf);
	chan_close(&main);
	chan_close(&peer);
}

/* The receiving end of the data channels: accepts them, checks JOIN, and
 * counts each channel's pages and rounds until END (or a failure). */
struct receiving {
	int lfd, nchan;
	struct rec_channels ch;
	uint64_t pages[4], announced[4];
	int rounds[4], ends;
	bool close_first; /* hang up on the first channel after its JOIN */
};

static void *receive(void *arg)
{
	struct receiving *r = arg;
	struct chan c[4];
	bool joined[4] = { false };
	struct wire_buf buf = { 0 };
	struct rec_header hdr;

	for (int i = 0; i < r->nchan; i++) {
		struct chan in;
		int idx;

		assert_int_equal(chan_accept(&in, r->lfd, "unix:x", 5000, NULL), 0);
		idx = handshake_check_join(&in, &r->ch, joined);
		assert_true(idx >= 0);
		joined[idx] = true;
		c[idx] = in;
	}
	if (r->close_first) {
		chan_close(&c[0]);
		return NULL;
	}
	for (int i = 0; i < r->nchan; i++) {
		while (wire_recv(&c[i], &hdr, &buf) == 0 && hdr.type != REC_END) {
			struct pages_view v;
			struct rec_round m;

			if (hdr.type == REC_PAGES &&
			    rec_parse_pages(buf.data, hdr.length, 1024, &v) == 0)
				r->pages[i] += v.count;
			if (hdr.type == REC_ROUND &&
			    rec_parse_round(buf.data, hdr.length, &m) == 0) {
				r->rounds[i]++;
				r->announced[i] += m.pages;
			}
		}
		r->ends += hdr.type == REC_END;
		chan_close(&c[i]);
	}
	wire_buf_free(&buf);
	return NULL;
}

static void start_receiving(struct receiving *r, const char *uri, int n, pthread_t *t)
{
	r->lfd = chan_listen(uri);
	assert_true(r->lfd >= 0);
	r->nchan = n;
	r->ch.count = (uint32_t)n;
	memset(r->ch.token, 0x5c, sizeof(r->ch.token));
	pthread_create(t, NULL, receive, r);
}

static void test_data_channels(void **unused)
{
	char uri[64];
	struct receiving r = { 0 };
	struct mig_params p;
	struct pipeline *pipe;
	struct chan main = { .fd = -1 };
	struct batch *b;
	pthread_t t;

	(void)unused;
	snprintf(uri, sizeof(uri), "unix:/tmp/ferry-test-pipe-%d.sock", getpid());
	start_receiving(&r, uri, 2, &t);
	params(&p, 2, COMPRESS_NONE);
	assert_int_equal(pipeline_open(uri, &main, &p, r.ch.token, NULL, NULL, &pipe), 0);
	for (uint32_t round = 0; round < 3; round++) {
		for (int i = 0; i < 5; i++) {
			assert_int_equal(pipeline_batch(pipe, &b), 0);
			fill(b, 4, (uint64_t)i * 4, round, false, NULL);
			assert_int_equal(pipeline_submit(pipe, b), 0);
		}
		assert_int_equal(pipeline_end_round(pipe, round), 0);
	}
	assert_int_equal(pipeline_end(pipe), 0);
	pthread_join(t, NULL);
	/* 3 rounds of 5 batches of 4 pages, over the two channels. */
	assert_int_equal(r.pages[0] + r.pages[1], 60);
	assert_int_equal(r.ends, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.rounds[i], 3);
		assert_int_equal(r.announced[i], r.pages[i]); /* each ROUND counts its own */
	}
	pipeline_close(pipe);
	close(r.lfd);
	unlink(uri + 5);
}

/* A data channel that breaks stops the pipeline: the next call fails with
 * that channel's sentence. */
static void test_first_failure(void **unused)
{
	char uri[64];
	struct receiving r = { .close_first = true };
	struct mig_params p;
	struct pipeline *pipe;
	struct chan main = { .fd = -1 };
	struct batch *b;
	pthread_t t;
	int rc = 0;

	(void)unused;
	snprintf(uri, sizeof(uri), "unix:/tmp/ferry-test-pipe-f%d.sock", getpid());
	start_receiving(&r, uri, 2, &t);
	params(&p, 2, COMPRESS_NONE);
	assert_int_equal(pipeline_open(uri, &main, &p, r.ch.token, NULL, NULL, &pipe), 0);
	pthread_join(t, NULL);
	/* Channel 1 stays open but unread: its socket fills; channel 0 broke. */
	for (int i = 0; i < 1000 && rc == 0; i++) {
		rc = pipeline_batch(pipe, &b);
		if (rc == 0) {
			fill(b, BATCH_PAGES, 0, 0, false, NULL);
			rc = pipeline_submit(pipe, b);
		}
	}
	assert_true(rc < 0);
	assert_non_null(strstr(err_msg(), "data channel 0"));
	pipeline_close(pipe);
	close(r.lfd);
	unlink(uri + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_main_channel),
		cmocka_unit_test(test_compression),
		cmocka_unit_test(test_data_channels),
		cmocka_unit_test(test_first_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
