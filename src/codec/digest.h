/* Line digests: for each page the destination holds, a hash of each
 * DIGEST_LINE-byte line of it, as it was sent. A page the XBZRLE cache does
 * not hold (the cache is smaller than the working set) can still go as a
 * delta: the lines whose hash changed, written as an XBZRLE delta of whole
 * lines, which the destination applies like any other (the wire does not
 * change). 8 bytes per line: 1/16 of guest memory. A changed line whose
 * hash did not change (one in 2^64) would be missed: --verify catches it.
 *
 * Kept like the cache: every page sent raw or as a delta is noted as sent,
 * a page sent as zero is noted as zero. */
#ifndef FERRY_CODEC_DIGEST_H
#define FERRY_CODEC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/page.h"

#define DIGEST_LINE  128
#define DIGEST_LINES (FERRY_PAGE_SIZE / DIGEST_LINE)

struct digests;

/* The memory digests of npages pages take. */
uint64_t digests_bytes(uint64_t npages);
/* NULL when out of memory. */
struct digests *digests_create(uint64_t npages);
void digests_destroy(struct digests *d);
/* gfn holds page (NULL: a zero page) on the destination now. */
void digests_note(struct digests *d, uint64_t gfn, const uint8_t *page);
/* A delta of page against what gfn held, into out (at most max bytes):
 * its length (0: unchanged), or -1 if gfn was never noted or the delta does
 * not fit. Either way gfn is noted as holding page. */
int digests_delta(struct digests *d, uint64_t gfn, const uint8_t *page, uint8_t *out, size_t max);
/* The same delta from two copies at hand (what a line delta of now
 * against old costs, for ferry dirtyrate): its length, or -1 past max. */
int lines_delta(const uint8_t *old, const uint8_t *now, uint8_t *out, size_t max);

#endif
