#include "migration/encode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/page_cache.h"
#include "codec/xbzrle.h"
#include "codec/zero.h"
#include "stream/format.h"
#include "util/error.h"
#include "util/time.h"

int encoder_init(struct encoder *e, uint64_t cache_bytes, uint64_t npages, uint32_t batch_pages)
{
	*e = (struct encoder){ 0 };
	if (!cache_bytes)
		return 0;
	e->cache = page_cache_create(cache_bytes, npages, PAGE_CACHE_ASSOC);
	if (!e->cache)
		return -ENOMEM;
	e->deltas = malloc((size_t)batch_pages * STREAM_PAGE_SIZE);
	if (!e->deltas) {
		encoder_free(e);
		return err_set(-ENOMEM, "out of memory for XBZRLE");
	}
	e->stats.cache_bytes = page_cache_bytes(e->cache);
	return 0;
}

void encoder_free(struct encoder *e)
{
	page_cache_destroy(e->cache);
	free(e->deltas);
	*e = (struct encoder){ 0 };
}

void encoder_begin_batch(struct encoder *e)
{
	e->used = 0;
}

/* A delta against the cached copy if there is one and it is smaller, or 0
 * with the page left to go raw. Either way the cache ends up holding page. */
static uint64_t try_delta(struct encoder *e, uint64_t gfn, const uint8_t *page, uint32_t round,
			  struct iovec *iov)
{
	uint8_t *cached = page_cache_lookup(e->cache, gfn, round), *out = e->deltas + e->used;
	int n;

	if (!cached) {
		e->stats.misses++;
		cached = page_cache_insert(e->cache, gfn, round);
		if (cached)
			memcpy(cached, page, STREAM_PAGE_SIZE);
		return 0;
	}
	e->stats.hits++;
	n = xbzrle_encode(cached, page, out, STREAM_PAGE_SIZE - 1);
	memcpy(cached, page, STREAM_PAGE_SIZE);
	if (n < 0) {
		e->stats.overflows++;
		return 0;
	}
	e->used += (uint32_t)n;
	e->stats.pages++;
	e->stats.bytes_saved += STREAM_PAGE_SIZE - (uint64_t)n;
	*iov = (struct iovec){ out, (size_t)n };
	return PAGE_ENTRY_LEN(gfn, PAGE_XBZRLE, n);
}

uint64_t encoder_page(struct encoder *e, uint64_t gfn, const uint8_t *page, uint32_t round,
		      struct iovec *iov)
{
	uint64_t entry = 0, t0;

	if (zero_page(page)) {
		if (e->cache)
			page_cache_drop(e->cache, gfn);
		*iov = (struct iovec){ NULL, 0 };
		return PAGE_ENTRY(gfn, PAGE_ZERO);
	}
	if (e->cache && round > 0) {
		t0 = time_now_ns();
		entry = try_delta(e, gfn, page, round, iov);
		e->stats.encode_ns += time_now_ns() - t0;
	}
	if (!entry) {
		*iov = (struct iovec){ (void *)page, STREAM_PAGE_SIZE };
		entry = PAGE_ENTRY(gfn, PAGE_RAW);
	}
	return entry;
}
