/* How the source encodes each page of a batch: zero, raw, or (with an
 * XBZRLE cache, after round 0) a delta against the copy last sent. Keeps the
 * cache equal to what the destination holds: every page sent raw or as a
 * delta is cached as sent, a page sent as zero is forgotten. */
#ifndef FERRY_MIGRATION_ENCODE_H
#define FERRY_MIGRATION_ENCODE_H

#include <stdint.h>
#include <sys/uio.h>

struct page_cache;

struct xbzrle_stats {
	uint64_t cache_bytes;
	uint64_t pages;	    /* sent as a delta */
	uint64_t hits;	    /* cached when re-sent */
	uint64_t misses;    /* not cached when re-sent */
	uint64_t overflows; /* cached, but the delta was not smaller */
	uint64_t bytes_saved;
	uint64_t encode_ns; /* time spent in lookups, deltas and cache copies */
};

struct encoder {
	struct page_cache *cache; /* NULL: no XBZRLE */
	uint8_t *deltas;	  /* this batch's deltas */
	uint32_t used;		  /* bytes of deltas used */
	struct xbzrle_stats stats;
};

/* cache_bytes 0: no XBZRLE. Returns 0 or -errno with err_msg(). */
int encoder_init(struct encoder *e, uint64_t cache_bytes, uint64_t npages, uint32_t batch_pages);
void encoder_free(struct encoder *e);
void encoder_begin_batch(struct encoder *e);

/* Encode page gfn (4 KiB at page, stable until the batch is sent) of round:
 * returns its page entry and sets *iov to its payload (empty for zero). */
uint64_t encoder_page(struct encoder *e, uint64_t gfn, const uint8_t *page, uint32_t round,
		      struct iovec *iov);

#endif
