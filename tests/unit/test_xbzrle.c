/* XBZRLE: deltas round-trip, the decoder rejects malformed input, and the
 * set-associative cache keeps hot pages that a direct-mapped cache loses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/page_cache.h"
#include "codec/xbzrle.h"

#define PAGE XBZRLE_PAGE

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* splitmix64's finaliser: scatters page numbers without any stride. */
static uint64_t scatter(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
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

static void test_cache_basics(void **unused)
{
	struct page_cache *pc = page_cache_create(1 << 20, 1 << 16, PAGE_CACHE_ASSOC);
	uint8_t *slot;

	(void)unused;
	assert_non_null(pc);
	assert_int_equal(page_cache_bytes(pc), 1 << 20);
	assert_null(page_cache_lookup(pc, 42, 1));
	slot = page_cache_insert(pc, 42, 1);
	assert_non_null(slot);
	memset(slot, 7, PAGE);
	assert_ptr_equal(page_cache_lookup(pc, 42, 2), slot);
	page_cache_drop(pc, 42);
	assert_null(page_cache_lookup(pc, 42, 3));
	assert_int_equal(page_cache_get_stats(pc).hits, 1);
	assert_int_equal(page_cache_get_stats(pc).misses, 2);
	page_cache_destroy(pc);
	assert_null(page_cache_create(4096, 16, PAGE_CACHE_ASSOC)); /* less than a set */
}

/* Replay rounds of dirty pages: hot pages scattered over guest memory, plus
 * a stream of cold ones. Returns the hit rate from round 2 on. */
static double replay(enum page_cache_kind kind, uint64_t hot, unsigned hot_pct)
{
	const uint64_t npages = 1 << 18, cache_pages = 1 << 14, per_round = 12000;
	struct page_cache *pc = page_cache_create(cache_pages * PAGE, npages, kind);
	struct page_cache_stats s0 = { 0 }, s;

	rng = 2463534242ull;
	for (uint32_t round = 1; round <= 20; round++) {
		if (round == 2)
			s0 = page_cache_get_stats(pc);
		for (uint64_t i = 0; i < per_round; i++) {
			uint64_t gfn = next() % 100 < hot_pct ? scatter(next() % hot) % npages
							      : next() % npages;

			if (!page_cache_lookup(pc, gfn, round))
				page_cache_insert(pc, gfn, round);
		}
	}
	s = page_cache_get_stats(pc);
	page_cache_destroy(pc);
	return (double)(s.hits - s0.hits) / (double)(s.hits + s.misses - s0.hits - s0.misses);
}

static void test_assoc_beats_direct(void **unused)
{
	double assoc, direct;

	(void)unused;
	/* Hot set half the cache, 80% of writes: conflicts and cold traffic
	 * cost the direct-mapped cache its hot pages. */
	assoc = replay(PAGE_CACHE_ASSOC, 8192, 80);
	direct = replay(PAGE_CACHE_DIRECT, 8192, 80);
	print_message("hot/cold: assoc %.2f direct %.2f\n", assoc, direct);
	assert_true(assoc > 0.75);
	assert_true(assoc > direct + 0.15);
	/* Uniform over memory 16x the cache: nobody can do well; no worse. */
	assoc = replay(PAGE_CACHE_ASSOC, 1, 0);
	direct = replay(PAGE_CACHE_DIRECT, 1, 0);
	print_message("uniform: assoc %.3f direct %.3f\n", assoc, direct);
	assert_true(assoc >= direct * 0.9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),	   cmocka_unit_test(test_edges),
		cmocka_unit_test(test_rejects_malformed),  cmocka_unit_test(test_cache_basics),
		cmocka_unit_test(test_assoc_beats_direct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
