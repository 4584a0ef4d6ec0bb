/* XBZRLE: deltas round-trip, and the decoder rejects malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/xbzrle.h"

#define PAGE FERRY_PAGE_SIZE

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void random_page(uint8_t *p)
{
	for (unsigned i = 0; i < PAGE; i++)
		p[i] = (uint8_t)next();
}

static void round_trip(const uint8_t *old, const uint8_t *new)
{
	uint8_t delta[PAGE + 8], page[PAGE];
	int n = xbzrle_encode(old, new, delta, sizeof(delta));

	assert_true(n >= 0);
	assert_int_equal(xbzrle_check(delta, (size_t)n), 0);
	memcpy(page, old, PAGE);
	xbzrle_apply(delta, (size_t)n, page);
	assert_memory_equal(page, new, PAGE);
}

static void test_round_trips(void **unused)
{
	uint8_t old[PAGE], new[PAGE];

	(void)unused;
	for (int t = 0; t < 2000; t++) {
		unsigned edits = (unsigned)(next() % 64);

		random_page(old);
		memcpy(new, old, PAGE);
		for (unsigned e = 0; e < edits; e++) {
			unsigned at = (unsigned)(next() % PAGE), len = (unsigned)(next() % 40) + 1;

			for (unsigned i = at; i < at + len && i < PAGE; i++)
				new[i] = (uint8_t)(new[i] + 1 + next() % 255);
		}
		round_trip(old, new);
	}
}

static void test_edges(void **unused)
{
	uint8_t old[PAGE], new[PAGE], delta[PAGE + 8];

	(void)unused;
	random_page(old);
	memcpy(new, old, PAGE);
	assert_int_equal(xbzrle_encode(old, new, delta, sizeof(delta)), 0); /* unchanged */
	new[0] ^= 1;
	new[PAGE - 1] ^= 1;
	round_trip(old, new); /* first and last byte */
	assert_int_equal(xbzrle_encode(old, new, delta, sizeof(delta)), 2 + 1 + 3 + 1);
	for (unsigned i = 0; i < PAGE; i++)
		new[i] = (uint8_t)~old[i];
	assert_int_equal(xbzrle_encode(old, new, delta, PAGE - 1), -1); /* not smaller */
	round_trip(old, new);
	for (unsigned i = 0; i < PAGE; i += 2)
		new[i] = old[i]; /* every other byte: gaps of one merge into one run */
	assert_int_equal(xbzrle_encode(old, new, delta, sizeof(delta)), 1 + 2 + PAGE - 1);
	round_trip(old, new);
}

static void test_rejects_malformed(void **unused)
{
	static const struct {
		uint8_t bytes[8];
		size_t len;
	} bad[] = {
		{ { 0x05 }, 1 },			       /* skip without run */
		{ { 0x05, 0x00 }, 2 },			       /* empty run */
		{ { 0x00, 0x02, 0xaa }, 3 },		       /* truncated run */
		{ { 0x80, 0x00, 0x01, 0xaa }, 4 },	       /* overlong skip */
		{ { 0xff, 0xff, 0x01, 0x01, 0xaa }, 5 },       /* three-byte skip */
		{ { 0x80, 0x20, 0x01, 0xaa }, 4 },	       /* skip 4096 leaves no room */
		{ { 0x01, 0x01, 0xaa, 0x00, 0x01, 0xbb }, 6 }, /* zero gap after a run */
		{ { 0xff, 0x1f, 0x02, 0xaa, 0xbb }, 5 },       /* 4095 + 2 past the end */
	};
	uint8_t ok[] = { 0x00, 0x01, 0xaa, 0xfe, 0x1f, 0x01, 0xbb }; /* byte 0 and 4095 */
	uint8_t page[PAGE] = { 0 };

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(xbzrle_check(bad[i].bytes, bad[i].len), -22);
	assert_int_equal(xbzrle_check(ok, sizeof(ok)), 0);
	xbzrle_apply(ok, sizeof(ok), page);
	assert_int_equal(page[0], 0xaa);
	assert_int_equal(page[PAGE - 1], 0xbb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_rejects_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
