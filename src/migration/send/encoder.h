/* How the source encodes the pages of a batch: zero, raw, or (with an
 * XBZRLE cache, after round 0) a delta against the copy last sent. Keeps
 * the cache equal to what the destination holds: every page sent raw or as
 * a delta is cached as sent, a page sent as zero is forgotten.
 *
 * While the guest runs a page can change under the send. Uncompressed and
 * without a cache, raw pages go out of guest memory with a hash each
 * (LPAGES), and a page that changed arrives damaged and is sent again the
 * next round; otherwise (the codec and the cache must see what is sent)
 * each page is first copied into the batch, so that the record's checksum
 * matches the wire. Paused (the switchover), guest memory is still and
 * raw pages go out in place. */
#ifndef FERRY_MIGRATION_SEND_ENCODER_H
#define FERRY_MIGRATION_SEND_ENCODER_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "migration/send/batch.h"

struct page_cache;
struct digests;
struct guest_mem;

/* Pages encoded so far, by kind. */
struct encoder_counts {
	uint64_t raw, zero, xbzrle;
};

struct encoder {
	struct page_cache *cache; /* NULL: no XBZRLE */
	struct digests *digests;  /* NULL: none (codec/digest.h) */
	uint8_t *delta;		  /* one page's delta */
	bool live;		  /* raw pages of a running guest as LPAGES */
	struct encoder_counts counts;
	struct xbzrle_stats xbzrle;
};

/* cache_bytes 0: no XBZRLE; with it, line digests of every page take
 * their share where it is at most half of it (encoder_digest_bytes), the
 * page cache the rest. live: nothing compresses the batches, so raw pages
 * of a running guest may go as LPAGES (not with a cache).
 * Returns 0 or -errno with err_msg(). */
int encoder_init(struct encoder *e, uint64_t cache_bytes, uint64_t npages, bool live);
/* What of cache_bytes the line digests of npages take (0: they do not fit). */
uint64_t encoder_digest_bytes(uint64_t cache_bytes, uint64_t npages);
void encoder_free(struct encoder *e);
/* No more deltas: after the switch to post-copy the destination has none
 * of the pages still to send to apply one to. */
void encoder_forget(struct encoder *e);

/* Encode the n pages gfns[] of mem into b (emptied for round first). With
 * in_place, raw pages point into guest memory (only while it is paused). */
void encoder_fill(struct encoder *e, struct batch *b, const struct guest_mem *mem,
		  const uint64_t *gfns, uint32_t n, uint32_t round, bool in_place);

#endif
