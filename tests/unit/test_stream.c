/* The stream decoder: every record type round-trips, and every malformed
 * field is refused with a sentence naming it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "stream/record.h"
#include "util/error.h"

#define NPAGES 1024

static void expect_einval(int rc, const char *words)
{
	assert_int_equal(rc, -EINVAL);
	if (!strstr(err_msg(), words))
		fail_msg("message '%s' lacks '%s'", err_msg(), words);
}

static void test_stream_header(void **unused)
{
	struct stream_header h;

	(void)unused;
	stream_header_init(&h);
	assert_int_equal(stream_header_check(&h), 0);
	h.version = STREAM_VERSION + 1;
	expect_einval(stream_header_check(&h), "is not supported");
	stream_header_init(&h);
	h.byte_order = 0x04030201;
	expect_einval(stream_header_check(&h), "byte order");
	h.magic = 0;
	expect_einval(stream_header_check(&h), "not sending a ferry migration stream");
}

static void test_record_header_and_checksum(void **unused)
{
	uint8_t body[24] = { 1, 2, 3 };
	struct iovec iov[2] = { { body, 10 }, { body + 10, 14 } };
	struct rec_header hdr;
	int skip;

	(void)unused;
	rec_header_init(&hdr, REC_STATE, iov, 2);
	assert_int_equal(hdr.length, 24);
	assert_int_equal(rec_header_check(&hdr, &skip), 0);
	assert_int_equal(skip, 0);
	assert_int_equal(rec_checksum_check(&hdr, body), 0);
	body[5] ^= 1;
	expect_einval(rec_checksum_check(&hdr, body), "checksum");
	body[5] ^= 1;
	/* The checksum covers the header: a flipped type or length fails too. */
	hdr.type |= REC_OPTIONAL;
	expect_einval(rec_checksum_check(&hdr, body), "checksum");
	hdr.type = REC_STATE;
	hdr.length = 23;
	expect_einval(rec_checksum_check(&hdr, body), "checksum");
	hdr.length = 24;
	assert_int_equal(rec_checksum_check(&hdr, body), 0);

	hdr.type = 99;
	expect_einval(rec_header_check(&hdr, &skip), "unknown type");
	hdr.type = 99 | REC_OPTIONAL;
	assert_int_equal(rec_header_check(&hdr, &skip), 0);
	assert_int_equal(skip, 1);
	hdr.type = REC_CONFIG;
	hdr.length = 31;
	expect_einval(rec_header_check(&hdr, &skip), "CONFIG record has a bad length");
	hdr.type = REC_COMMIT;
	hdr.length = 8;
	expect_einval(rec_header_check(&hdr, &skip), "COMMIT");
	hdr.type = REC_PAGES;
	hdr.length = REC_MAX_BODY;
	expect_einval(rec_header_check(&hdr, &skip), "PAGES");
}

static void test_config(void **unused)
{
	struct rec_config c = { .mem_bytes = 1ull << 30, .vcpus = 2, .page_size = 4096 }, out;

	(void)unused;
	assert_int_equal(rec_parse_config(&c, sizeof(c), &out), 0);
	assert_int_equal(out.vcpus, 2);
	c.page_size = 65536;
	expect_einval(rec_parse_config(&c, sizeof(c), &out), "65536-byte pages");
	c.page_size = 4096;
	c.vcpus = 0;
	expect_einval(rec_parse_config(&c, sizeof(c), &out), "0 vCPUs");
	c.vcpus = 1;
	c.mem_bytes = (1ull << 30) + 4096;
	expect_einval(rec_parse_config(&c, sizeof(c), &out), "bytes of guest memory");
	c.mem_bytes = 1ull << 30;
	c.flags = CONFIG_VERIFY | CONFIG_CHANNELS | CONFIG_POSTCOPY | CONFIG_LOCAL;
	assert_int_equal(rec_parse_config(&c, sizeof(c), &out), 0);
	c.flags = 16;
	expect_einval(rec_parse_config(&c, sizeof(c), &out), "unknown flags");
}

/* A PAGES body: n entries (RAW unless zero[i]), then the raw payload. */
static uint32_t build_pages(uint8_t *buf, uint32_t n, const uint64_t *gfn, const int *zero)
{
	struct rec_pages fixed = { .count = n, .round = 3 };
	uint64_t *e = (uint64_t *)(buf + sizeof(fixed));
	uint32_t raw = 0;

	memcpy(buf, &fixed, sizeof(fixed));
	for (uint32_t i = 0; i < n; i++) {
		e[i] = PAGE_ENTRY(gfn[i], zero[i] ? PAGE_ZERO : PAGE_RAW);
		raw += !zero[i];
	}
	memset(buf + sizeof(fixed) + 8 * n, 0x5a, (size_t)raw * 4096);
	return (uint32_t)(sizeof(fixed) + 8 * n + raw * 4096);
}

static void test_pages(void **unused)
{
	static uint8_t buf[8 + 8 * 4 + 4 * 4096];
	uint64_t gfn[3] = { 0, 7, NPAGES - 1 };
	int zero[3] = { 0, 1, 0 };
	struct pages_view v;
	uint32_t len = build_pages(buf, 3, gfn, zero);

	(void)unused;
	assert_int_equal(rec_parse_pages(buf, len, NPAGES, &v), 0);
	assert_int_equal(v.count, 3);
	assert_int_equal(v.round, 3);
	assert_int_equal(v.raw, 2);
	assert_ptr_equal(v.payload, buf + 8 + 24);
	expect_einval(rec_parse_pages(buf, len - 1, NPAGES, &v), "its list says");
	expect_einval(rec_parse_pages(buf, len, NPAGES - 1, &v), "beyond guest memory");
	((uint64_t *)(buf + 8))[1] = PAGE_ENTRY(7, 9);
	expect_einval(rec_parse_pages(buf, len, NPAGES, &v), "unknown page encoding 9");
	((struct rec_pages *)buf)->count = 0;
	expect_einval(rec_parse_pages(buf, len, NPAGES, &v), "0 pages");
	((struct rec_pages *)buf)->count = 100;
	expect_einval(rec_parse_pages(buf, 40, NPAGES, &v), "shorter than its page list");
}

/* LPAGES: its head says how long it must be (a hash per raw page), and
 * its checksum covers the head, not the pages (they carry their own). */
static void test_lpages(void **unused)
{
	static uint8_t buf[8 + 8 * 3 + 8 * 2 + 2 * 4096];
	uint64_t e[3] = { PAGE_ENTRY(1, PAGE_RAW), PAGE_ENTRY(2, PAGE_ZERO),
			  PAGE_ENTRY(3, PAGE_RAW) };
	struct rec_pages fixed = { .count = 3, .round = 4 };
	uint32_t len = sizeof(buf), head = 8 + 24 + 16;
	struct rec_header hdr = { .type = REC_LPAGES, .length = len };
	struct pages_view v;
	struct hash_state st;

	(void)unused;
	memcpy(buf, &fixed, sizeof(fixed));
	memcpy(buf + 8, e, sizeof(e));
	assert_int_equal(rec_parse_pages_head(REC_LPAGES, buf, len, NPAGES, &v), 0);
	assert_int_equal(v.raw, 2);
	expect_einval(rec_parse_pages_head(REC_LPAGES, buf, len - 16, NPAGES, &v),
		      "LPAGES record is 8224 bytes, its list says 8240");
	assert_int_equal(rec_checksum_covers(REC_LPAGES, buf, len), head);
	assert_int_equal(rec_checksum_covers(REC_PAGES, buf, len), len);
	rec_checksum_begin(&hdr, &st);
	hash_update(&st, buf, head);
	hdr.checksum = hash_end(&st);
	buf[head + 100] ^= 1; /* a page: its own hash's business */
	assert_int_equal(rec_checksum_check(&hdr, buf), 0);
	buf[head - 1] ^= 1; /* a page hash: the record's */
	expect_einval(rec_checksum_check(&hdr, buf), "LPAGES record failed its checksum");
	((uint64_t *)(buf + 8))[1] = PAGE_ENTRY_LEN(2, PAGE_XBZRLE, 8);
	expect_einval(rec_parse_pages_head(REC_LPAGES, buf, len, NPAGES, &v), "XBZRLE");
}

/* A ZPAGES body: one RAW and one XBZRLE entry (a 10-byte delta), then a
 * frame of frame_len bytes. */
static uint32_t build_zpages(uint8_t *buf, uint32_t payload_len, uint32_t frame_len)
{
	struct rec_zpages fixed = {
		.count = 2, .round = 1, .codec = ZPAGES_ZSTD, .payload_len = payload_len
	};
	uint64_t e[2] = { PAGE_ENTRY(3, PAGE_RAW), PAGE_ENTRY_LEN(9, PAGE_XBZRLE, 10) };

	memcpy(buf, &fixed, sizeof(fixed));
	memcpy(buf + sizeof(fixed), e, sizeof(e));
	memset(buf + sizeof(fixed) + sizeof(e), 0x77, frame_len);
	return (uint32_t)(sizeof(fixed) + sizeof(e) + frame_len);
}

static void test_zpages(void **unused)
{
	static uint8_t buf[24 + 16 + 4096];
	struct zpages_view z;
	uint32_t len = build_zpages(buf, 4106, 100);

	(void)unused;
	assert_int_equal(rec_parse_zpages(buf, len, NPAGES, &z), 0);
	assert_int_equal(z.pages.count, 2);
	assert_int_equal(z.pages.round, 1);
	assert_int_equal(z.pages.payload_bytes, 4106);
	assert_int_equal(z.frame_len, 100);
	assert_ptr_equal(z.frame, buf + 40);
	assert_null(z.pages.payload);
	expect_einval(rec_parse_zpages(buf, build_zpages(buf, 4096, 100), NPAGES, &z),
		      "its list says 4106");
	expect_einval(rec_parse_zpages(buf, build_zpages(buf, 4106, 0), NPAGES, &z),
		      "no compressed frame");
	expect_einval(rec_parse_zpages(buf, len, 5, &z), "beyond guest memory");
	((struct rec_zpages *)buf)->codec = 7;
	expect_einval(rec_parse_zpages(buf, len, NPAGES, &z), "unknown codec 7");
}

static void test_channels(void **unused)
{
	struct rec_channels ch = { .count = 2, .token = { 1, 2, 3 } }, out;
	struct rec_join j = { .index = 1 }, jout;
	uint8_t rx[8 + 2 * sizeof(struct rec_received_chan)] = { 2 };
	struct rec_received_chan acct[CHANNELS_MAX];
	uint32_t n;

	(void)unused;
	assert_int_equal(rec_parse_channels(&ch, sizeof(ch), &out), 0);
	assert_memory_equal(out.token, ch.token, CHANNEL_TOKEN_SIZE);
	ch.count = CHANNELS_MAX + 1;
	expect_einval(rec_parse_channels(&ch, sizeof(ch), &out), "data channels");
	ch.count = 0; /* none: the token is for post-copy's urgent channel */
	assert_int_equal(rec_parse_channels(&ch, sizeof(ch), &out), 0);
	assert_int_equal(rec_parse_join(&j, sizeof(j), &jout), 0);
	assert_int_equal(jout.index, 1);
	expect_einval(rec_parse_join(&j, sizeof(j) - 1, &jout), "bad length");
	assert_int_equal(rec_parse_received(rx, sizeof(rx), &n, acct), 0);
	assert_int_equal(n, 2);
	expect_einval(rec_parse_received(rx, sizeof(rx) - 8, &n, acct), "does not match");
	rx[0] = CHANNELS_MAX + 1;
	expect_einval(rec_parse_received(rx, sizeof(rx), &n, acct), "does not match");
}

static void test_hashes_and_error(void **unused)
{
	uint8_t buf[16 + 8 * 4];
	struct rec_hashes fixed = { .first_gfn = NPAGES - 4, .count = 4 };
	struct hashes_view v;
	char text[ERROR_MAX_TEXT + 1];
	uint32_t code;
	uint8_t err[sizeof(struct rec_error) + 5] = { 5, 0,   0,   0,	0,    0,  0,
						      0, 'b', 'a', 'd', '\n', '!' };

	(void)unused;
	memcpy(buf, &fixed, sizeof(fixed));
	assert_int_equal(rec_parse_hashes(buf, sizeof(buf), NPAGES, &v), 0);
	assert_int_equal(v.count, 4);
	expect_einval(rec_parse_hashes(buf, sizeof(buf), NPAGES - 1, &v), "beyond guest memory");
	expect_einval(rec_parse_hashes(buf, sizeof(buf) - 8, NPAGES, &v), "does not match");

	assert_int_equal(rec_parse_error(err, sizeof(err), &code, text), 0);
	assert_int_equal(code, 5);
	assert_string_equal(text, "bad !"); /* control characters never reach a terminal */
}

/* POSTCOPY: in order, within memory, its bits no further than its pages;
 * REQUEST: a count that matches, pages within memory. */
static void test_postcopy_and_request(void **unused)
{
	uint64_t buf[2 + 16] = { 0 };
	struct rec_postcopy fixed = { .first_gfn = 0, .count = NPAGES, .round = 3 };
	struct rec_request req = { .count = 2 };
	uint64_t rbuf[1 + 2];
	struct postcopy_view v;
	struct request_view r;

	(void)unused;
	memcpy(buf, &fixed, sizeof(fixed));
	buf[2] = 0x5;
	assert_int_equal(rec_parse_postcopy(buf, 16 + 8 * 16, NPAGES, 0, &v), 0);
	assert_int_equal(v.round, 3);
	assert_int_equal(v.bits[0], 0x5);
	expect_einval(rec_parse_postcopy(buf, 16 + 8 * 15, NPAGES, 0, &v), "does not match");
	expect_einval(rec_parse_postcopy(buf, 16 + 8 * 16, NPAGES, 64, &v), "not at 64");
	expect_einval(rec_parse_postcopy(buf, 16 + 8 * 16, NPAGES - 1, 0, &v),
		      "beyond guest memory");
	fixed.count = NPAGES - 60; /* the last record, ending mid-word */
	memcpy(buf, &fixed, sizeof(fixed));
	assert_int_equal(rec_parse_postcopy(buf, 16 + 8 * 16, NPAGES - 60, 0, &v), 0);
	buf[2 + 15] = 1ull << 4; /* page NPAGES - 60: past its end */
	expect_einval(rec_parse_postcopy(buf, 16 + 8 * 16, NPAGES - 60, 0, &v),
		      "names pages beyond");

	memcpy(rbuf, &req, sizeof(req));
	rbuf[1] = 7;
	rbuf[2] = NPAGES - 1;
	assert_int_equal(rec_parse_request(rbuf, sizeof(rbuf), NPAGES, &r), 0);
	assert_int_equal(r.gfn[1], NPAGES - 1);
	expect_einval(rec_parse_request(rbuf, sizeof(rbuf), NPAGES - 1, &r), "beyond guest memory");
	expect_einval(rec_parse_request(rbuf, sizeof(rbuf) - 8, NPAGES, &r), "does not match");
}

/* RECOVER: POSTCOPY's checks, in its own name; RESUME: its exact size, a
 * migration named. */
static void test_recover_and_resume(void **unused)
{
	uint64_t buf[2 + 16] = { 0 };
	struct rec_postcopy fixed = { .first_gfn = 0, .count = NPAGES, .round = 1 };
	struct rec_resume resume = { .id = 42 };
	struct postcopy_view v;
	struct rec_resume got;

	(void)unused;
	memcpy(buf, &fixed, sizeof(fixed));
	buf[2 + 15] = 1ull << 63;
	assert_int_equal(rec_parse_recover(buf, 16 + 8 * 16, NPAGES, 0, &v), 0);
	assert_int_equal(v.bits[15], 1ull << 63);
	expect_einval(rec_parse_recover(buf, 16 + 8 * 16, NPAGES, 64, &v), "RECOVER record starts");
	expect_einval(rec_parse_recover(buf, 16, NPAGES, 0, &v), "RECOVER record's count");

	resume.token[3] = 9;
	assert_int_equal(rec_parse_resume(&resume, sizeof(resume), &got), 0);
	assert_int_equal(got.id, 42);
	assert_int_equal(got.token[3], 9);
	expect_einval(rec_parse_resume(&resume, sizeof(resume) - 8, &got), "bad length");
	resume.id = 0;
	expect_einval(rec_parse_resume(&resume, sizeof(resume), &got), "no migration");
}

/* PLACED: the account, then as many vCPUs' blocked times as it says. */
static void test_placed(void **unused)
{
	struct rec_placed in = { .faults = 3, .wait_max_ns = 9, .vcpus = 2 }, out;
	size_t head = offsetof(struct rec_placed, blocked_ns);

	(void)unused;
	in.blocked_ns[1] = 77;
	assert_int_equal(rec_parse_placed(&in, (uint32_t)head + 16, &out), 0);
	assert_int_equal(out.faults, 3);
	assert_int_equal(out.blocked_ns[1], 77);
	expect_einval(rec_parse_placed(&in, (uint32_t)head + 8, &out), "does not match");
	expect_einval(rec_parse_placed(&in, (uint32_t)head - 8, &out), "truncated");
	in.vcpus = PLACED_MAX_VCPUS + 1;
	expect_einval(rec_parse_placed(&in, (uint32_t)sizeof(in), &out), "does not match");
}

/* READY says the versions (8 bytes), MEMFD the memory handed over (16):
 * other lengths are refused at the header. */
static void test_ready_and_memfd(void **unused)
{
	struct rec_header h = { .type = REC_READY, .length = sizeof(struct rec_ready) };
	int skip;

	(void)unused;
	assert_int_equal(rec_header_check(&h, &skip), 0);
	h.length = 0;
	expect_einval(rec_header_check(&h, &skip), "READY record has a bad length");
	h = (struct rec_header){ .type = REC_MEMFD, .length = sizeof(struct rec_memfd) };
	assert_int_equal(rec_header_check(&h, &skip), 0);
	h.length = 8;
	expect_einval(rec_header_check(&h, &skip), "MEMFD record has a bad length");
	assert_string_equal(rec_type_name(REC_MEMFD), "MEMFD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_header),
		cmocka_unit_test(test_record_header_and_checksum),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_lpages),
		cmocka_unit_test(test_zpages),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_hashes_and_error),
		cmocka_unit_test(test_postcopy_and_request),
		cmocka_unit_test(test_recover_and_resume),
		cmocka_unit_test(test_placed),
		cmocka_unit_test(test_ready_and_memfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
