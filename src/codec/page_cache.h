/* The XBZRLE page cache: the last copy sent of recently re-sent pages, so
 * that the next send can be a delta against it.
 *
 * Two designs. PAGE_CACHE_DIRECT is the classic one (QEMU's): a page has one
 * slot, gfn modulo the number of slots, and every miss takes it. Hot pages
 * that share a slot evict each other, and a stream of cold pages flushes the
 * hot ones. PAGE_CACHE_ASSOC, the default, is 8-way set associative with
 * hashed sets; a miss may take the way whose page has been re-sent least
 * often, with that count halved for every round since it was last used, and
 * only if the newcomer has been re-sent at least as often. The bench compares
 * the two on recorded dirtying traces (bench/xbzrle-cache). */
#ifndef FERRY_CODEC_PAGE_CACHE_H
#define FERRY_CODEC_PAGE_CACHE_H

#include <stdint.h>

enum page_cache_kind {
	PAGE_CACHE_ASSOC,
	PAGE_CACHE_DIRECT
};

struct page_cache_stats {
	uint64_t hits, misses, inserts, evictions;
};

struct page_cache;

/* A cache of bytes (rounded down to whole sets) for a guest of npages.
 * Returns NULL with err_msg() if out of memory or smaller than one set. */
struct page_cache *page_cache_create(uint64_t bytes, uint64_t npages, enum page_cache_kind kind);
void page_cache_destroy(struct page_cache *pc);

/* Page gfn is being sent in round: its cached copy, or NULL (a miss). */
uint8_t *page_cache_lookup(struct page_cache *pc, uint64_t gfn, uint32_t round);
/* After a miss: the slot to copy the page into, or NULL if it should not
 * displace what is cached. */
uint8_t *page_cache_insert(struct page_cache *pc, uint64_t gfn, uint32_t round);
/* Round 0 seeds the cache with the pages it sends, so that the pages the
 * guest dirties again can go as deltas from round 1 on: the slot to copy
 * gfn into if its set has a free way, else NULL (seeding never evicts:
 * the cache keeps the first pages that fit, one copy each). */
uint8_t *page_cache_seed(struct page_cache *pc, uint64_t gfn);
/* Forget gfn's copy (e.g. it went as a zero page). */
void page_cache_drop(struct page_cache *pc, uint64_t gfn);

uint64_t page_cache_bytes(const struct page_cache *pc);
struct page_cache_stats page_cache_get_stats(const struct page_cache *pc);

#endif
