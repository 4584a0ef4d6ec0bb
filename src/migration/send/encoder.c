#include "migration/send/encoder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/digest.h"
#include "codec/page_cache.h"
#include "codec/xbzrle.h"
#include "codec/zero.h"
#include "stream/format.h"
#include "stream/record.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/time.h"
#include "vm/memory.h"

uint64_t encoder_digest_bytes(uint64_t cache_bytes, uint64_t npages)
{
	/* A cache smaller than the working set misses in proportion; a miss
	 * with a digest still goes as a delta of lines. */
	return digests_bytes(npages) <= cache_bytes / 2 ? digests_bytes(npages) : 0;
}

int encoder_init(struct encoder *e, uint64_t cache_bytes, uint64_t npages, bool live)
{
	uint64_t digest_bytes = encoder_digest_bytes(cache_bytes, npages);

	*e = (struct encoder){ .live = live && !cache_bytes };
	if (!cache_bytes)
		return 0;
	if (digest_bytes)
		e->digests = digests_create(npages);
	e->cache = page_cache_create(cache_bytes - digest_bytes, npages, PAGE_CACHE_ASSOC);
	e->delta = malloc(FERRY_PAGE_SIZE);
	if (!e->cache || !e->delta || (digest_bytes && !e->digests)) {
		encoder_free(e);
		return err_set(-ENOMEM, "out of memory for the XBZRLE cache");
	}
	e->xbzrle.cache_bytes = page_cache_bytes(e->cache);
	e->xbzrle.digest_bytes = digest_bytes;
	return 0;
}

void encoder_free(struct encoder *e)
{
	page_cache_destroy(e->cache);
	digests_destroy(e->digests);
	free(e->delta);
	*e = (struct encoder){ 0 };
}

void encoder_forget(struct encoder *e)
{
	page_cache_destroy(e->cache);
	digests_destroy(e->digests);
	e->cache = NULL;
	e->digests = NULL;
}

/* What the destination holds at gfn now (NULL: zeros), for later line
 * deltas. */
static void remember(struct encoder *e, uint64_t gfn, const uint8_t *page)
{
	if (e->digests)
		digests_note(e->digests, gfn, page);
}

/* A page the cache missed, as a delta of the lines whose digest changed
 * (in e->delta): its length, or -1 with the page left to go raw. */
static int line_delta(struct encoder *e, uint64_t gfn, const uint8_t *page)
{
	int n;

	if (!e->digests)
		return -1;
	n = digests_delta(e->digests, gfn, page, e->delta, FERRY_PAGE_SIZE - 1);
	if (n < 0)
		return -1;
	e->xbzrle.line_pages++;
	e->xbzrle.pages++;
	e->xbzrle.bytes_saved += FERRY_PAGE_SIZE - (uint64_t)n;
	return n;
}

/* A delta (in e->delta) against the cached copy if there is one and it is
 * smaller than the page: its length (0: unchanged), or -1 with the page left
 * to go raw. Either way the cache ends up holding page. */
static int try_delta(struct encoder *e, uint64_t gfn, const uint8_t *page, uint32_t round)
{
	uint8_t *cached = page_cache_lookup(e->cache, gfn, round);
	int n;

	if (!cached) {
		e->xbzrle.misses++;
		cached = page_cache_insert(e->cache, gfn, round);
		if (cached)
			memcpy(cached, page, FERRY_PAGE_SIZE);
		return line_delta(e, gfn, page);
	}
	e->xbzrle.hits++;
	n = xbzrle_encode(cached, page, e->delta, FERRY_PAGE_SIZE - 1);
	memcpy(cached, page, FERRY_PAGE_SIZE);
	remember(e, gfn, page);
	if (n < 0) {
		e->xbzrle.overflows++;
		return -1;
	}
	e->xbzrle.pages++;
	e->xbzrle.bytes_saved += FERRY_PAGE_SIZE - (uint64_t)n;
	return n;
}

/* Round 0 leaves a copy of what it sends in the cache while there is room:
 * without it, the round after resends most of the working set raw (the
 * cache starts empty), which on a slow link costs whole seconds. */
static void seed(struct encoder *e, uint64_t gfn, const uint8_t *page)
{
	uint8_t *slot = page_cache_seed(e->cache, gfn);

	if (slot) {
		memcpy(slot, page, FERRY_PAGE_SIZE);
		e->xbzrle.seeded++;
	}
}

/* Append a payload of len bytes at p; neighbouring payloads in memory go
 * as one iovec. */
static void add_payload(struct batch *b, const uint8_t *p, uint32_t len)
{
	struct iovec *last = b->niov ? &b->iov[b->niov - 1] : NULL;

	if (!len)
		return;
	b->payload_len += len;
	if (last && (const uint8_t *)last->iov_base + last->iov_len == p)
		last->iov_len += len;
	else
		b->iov[b->niov++] = (struct iovec){ (void *)p, len };
}

/* One page into b: its entry, and its payload (a copy, a delta, or with
 * in_place the page itself). For batches that may hold deltas (after round
 * 0, with a cache) and the paused switchover; fill_live and fill_hashed
 * do the rest. */
static void encode_page(struct encoder *e, struct batch *b, const uint8_t *guest, uint64_t gfn,
			bool in_place)
{
	uint8_t *slot;
	const uint8_t *page;
	uint64_t t0;
	int n = -1;

	b->used = (b->used + 7) & ~7u; /* zero_page() reads words */
	slot = b->buf + b->used;
	page = in_place ? guest : slot;

	if (!in_place)
		memcpy(slot, guest, FERRY_PAGE_SIZE);
	if (zero_page(page)) {
		if (e->cache)
			page_cache_drop(e->cache, gfn);
		remember(e, gfn, NULL);
		b->entries[b->count++] = PAGE_ENTRY(gfn, PAGE_ZERO);
		e->counts.zero++;
		return;
	}
	if (e->cache && b->round > 0) {
		t0 = time_now_ns();
		n = try_delta(e, gfn, page, b->round);
		e->xbzrle.encode_ns += time_now_ns() - t0;
	}
	if (n >= 0) { /* the delta replaces the copy it was made from */
		memcpy(slot, e->delta, (size_t)n);
		b->used += (uint32_t)n;
		add_payload(b, slot, (uint32_t)n);
		b->entries[b->count++] = PAGE_ENTRY_LEN(gfn, PAGE_XBZRLE, n);
		e->counts.xbzrle++;
		return;
	}
	if (b->round == 0) /* try_delta remembers the pages it sees */
		remember(e, gfn, page);
	if (!in_place)
		b->used += FERRY_PAGE_SIZE;
	add_payload(b, page, FERRY_PAGE_SIZE);
	b->entries[b->count++] = PAGE_ENTRY(gfn, PAGE_RAW);
	e->counts.raw++;
}

/* Without deltas a page goes zero or raw, which a look at guest memory
 * tells before anything is copied: so the record's length, and its
 * checksum's seed, are known first, and each page is hashed as it is
 * copied, while it is in the cache, instead of in a pass over the whole
 * batch after. A page that changes between the look and the copy is dirty
 * again and goes again next round; the batch carries what it says. */
static void fill_hashed(struct encoder *e, struct batch *b, const struct guest_mem *mem,
			const uint64_t *gfns, uint32_t n)
{
	struct rec_pages fixed = { .count = n, .round = b->round };
	struct rec_header hdr = { .type = REC_PAGES };
	struct hash_state st;
	uint32_t raw = 0;

	for (uint32_t i = 0; i < n; i++) {
		bool zero = zero_page(mem_host(mem, gfns[i] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE));

		b->entries[i] = PAGE_ENTRY(gfns[i], zero ? PAGE_ZERO : PAGE_RAW);
		raw += !zero;
		if (zero && e->cache)
			page_cache_drop(e->cache, gfns[i]);
		if (zero)
			remember(e, gfns[i], NULL);
	}
	b->count = n;
	hdr.length = (uint32_t)(sizeof(fixed) + 8ull * n + (uint64_t)raw * FERRY_PAGE_SIZE);
	rec_checksum_begin(&hdr, &st);
	hash_update(&st, &fixed, sizeof(fixed));
	hash_update(&st, b->entries, 8ull * n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *slot = b->buf + b->used;

		if (PAGE_ENTRY_ENC(b->entries[i]) == PAGE_ZERO)
			continue;
		memcpy(slot, mem_host(mem, gfns[i] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE),
		       FERRY_PAGE_SIZE);
		hash_update(&st, slot, FERRY_PAGE_SIZE);
		if (e->cache)
			seed(e, gfns[i], slot);
		remember(e, gfns[i], slot);
		b->used += FERRY_PAGE_SIZE;
		add_payload(b, slot, FERRY_PAGE_SIZE);
	}
	e->counts.raw += raw;
	e->counts.zero += n - raw;
	b->checksum = hash_end(&st);
	b->hashed = true;
}

/* Ask for the page while this one is looked at and hashed: the hardware
 * prefetcher stops at page boundaries, so each page's first lines would
 * otherwise wait on memory. */
static void prefetch_page(const uint8_t *page)
{
	for (unsigned off = 0; off < FERRY_PAGE_SIZE; off += 64)
		__builtin_prefetch(page + off);
}

/* Raw pages of a running guest go out of guest memory itself, each with
 * its own hash (LPAGES): the kernel's copy into the socket is the only
 * one. A page the guest changes between its hash and that copy arrives
 * damaged; it is dirty again, so a later round sends it whole, and the
 * destination fails the migration at END if one was not. */
static void fill_live(struct encoder *e, struct batch *b, const struct guest_mem *mem,
		      const uint64_t *gfns, uint32_t n)
{
	struct rec_pages fixed = { .count = n, .round = b->round };
	struct rec_header hdr = { .type = REC_LPAGES };
	struct hash_state st;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *page = mem_host(mem, gfns[i] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
		bool zero;

		if (i + 1 < n)
			prefetch_page(
				mem_host(mem, gfns[i + 1] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE));
		zero = zero_page(page);

		b->entries[i] = PAGE_ENTRY(gfns[i], zero ? PAGE_ZERO : PAGE_RAW);
		if (zero)
			continue;
		b->hashes[b->raw++] = hash64(page, FERRY_PAGE_SIZE);
		add_payload(b, page, FERRY_PAGE_SIZE);
	}
	b->count = n;
	hdr.length = (uint32_t)(sizeof(fixed) + 8ull * n + 8ull * b->raw + b->payload_len);
	rec_checksum_begin(&hdr, &st);
	hash_update(&st, &fixed, sizeof(fixed));
	hash_update(&st, b->entries, 8ull * n);
	hash_update(&st, b->hashes, 8ull * b->raw);
	e->counts.raw += b->raw;
	e->counts.zero += n - b->raw;
	b->checksum = hash_end(&st);
	b->live = true;
}

void encoder_fill(struct encoder *e, struct batch *b, const struct guest_mem *mem,
		  const uint64_t *gfns, uint32_t n, uint32_t round, bool in_place)
{
	batch_reset(b, round);
	if (!in_place && e->live) {
		fill_live(e, b, mem, gfns, n);
		return;
	}
	if (!in_place && (!e->cache || round == 0)) {
		fill_hashed(e, b, mem, gfns, n);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		encode_page(e, b, mem_host(mem, gfns[i] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE),
			    gfns[i], in_place);
}
