/* The XBZRLE page cache: what it keeps, what it refuses, what it evicts,
 * and that the set-associative design keeps hot pages a direct-mapped
 * cache loses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "codec/page_cache.h"
#include "util/page.h"

#define PAGE FERRY_PAGE_SIZE
#define WAYS 8
#define MANY (1 << 16)

static uint64_t rng;

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

/* Send gfn in round: a hit, or a miss that inserts if the cache lets it.
 * Returns 1 hit, 0 inserted, -1 refused. */
static int send_page(struct page_cache *pc, uint64_t gfn, uint32_t round)
{
	if (page_cache_lookup(pc, gfn, round))
		return 1;
	return page_cache_insert(pc, gfn, round) ? 0 : -1;
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

/* One set of 8 ways (every page maps to it): a newcomer may only displace
 * a page re-sent no more often than itself. */
static void test_keeps_what_is_resent(void **unused)
{
	struct page_cache *pc = page_cache_create(WAYS * PAGE, MANY, PAGE_CACHE_ASSOC);

	(void)unused;
	for (uint64_t g = 0; g < WAYS; g++) /* each sent three times */
		for (uint32_t r = 1; r <= 3; r++)
			assert_int_equal(send_page(pc, g, r), r == 1 ? 0 : 1);
	assert_int_equal(send_page(pc, 100, 3), -1); /* sent once: refused */
	assert_int_equal(send_page(pc, 100, 3), -1); /* twice: still refused */
	assert_int_equal(send_page(pc, 100, 3), 0);  /* as often: it gets a way */
	assert_int_equal(page_cache_get_stats(pc).evictions, 1);
	page_cache_destroy(pc);
}

/* A page unused for rounds loses worth (halved each round), so new hot
 * pages replace old ones. */
static void test_idle_pages_age(void **unused)
{
	struct page_cache *pc = page_cache_create(WAYS * PAGE, MANY, PAGE_CACHE_ASSOC);

	(void)unused;
	for (uint64_t g = 0; g < WAYS; g++)
		for (uint32_t r = 1; r <= 4; r++)
			send_page(pc, g, r);
	/* Eight rounds later the old pages are worth nothing: a page sent
	 * once takes a way. */
	assert_int_equal(send_page(pc, 200, 12), 0);
	assert_int_equal(send_page(pc, 200, 13), 1);
	page_cache_destroy(pc);
}

/* Direct-mapped: every miss takes the page's one slot. */
/* Round 0 fills free ways and never evicts; what it seeded is found in
 * round 1, and pages really re-sent displace seeded ones. */
static void test_seed(void **unused)
{
	struct page_cache *pc = page_cache_create(64 * PAGE, 1 << 16, PAGE_CACHE_ASSOC);
	uint64_t seeded = 0, found = 0, hits = 0;

	(void)unused;
	assert_non_null(pc);
	for (uint64_t g = 0; g < 1024; g++)
		seeded += page_cache_seed(pc, g) != NULL;
	assert_int_equal(seeded, 64); /* full, and the first ones stayed */
	for (uint64_t g = 0; g < 1024; g++)
		found += page_cache_lookup(pc, g, 1) != NULL;
	assert_int_equal(found, 64);
	for (uint32_t round = 1; round < 4; round++)
		for (uint64_t g = 5000; g < 5064; g++)
			send_page(pc, g, round);
	for (uint64_t g = 5000; g < 5064; g++)
		hits += page_cache_lookup(pc, g, 4) != NULL;
	assert_true(hits > 32);
	page_cache_destroy(pc);
}

static void test_direct_mapped(void **unused)
{
	struct page_cache *pc = page_cache_create(WAYS * PAGE, MANY, PAGE_CACHE_DIRECT);

	(void)unused;
	assert_int_equal(send_page(pc, 3, 1), 0);
	assert_int_equal(send_page(pc, 3, 2), 1);
	assert_int_equal(send_page(pc, 3 + WAYS, 2), 0); /* same slot: evicts 3 */
	assert_int_equal(send_page(pc, 3, 3), 0);
	assert_int_equal(page_cache_get_stats(pc).evictions, 2);
	page_cache_drop(pc, 3);
	assert_int_equal(send_page(pc, 3, 4), 0);
	page_cache_destroy(pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_basics),
		cmocka_unit_test(test_keeps_what_is_resent),
		cmocka_unit_test(test_idle_pages_age),
		cmocka_unit_test(test_direct_mapped),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_assoc_beats_direct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
