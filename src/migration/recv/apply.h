/* Received pages into guest memory: a PAGES or ZPAGES record, checked,
 * decompressed and written. One writer per channel (its own decompression
 * contexts and scratch); all share the bitmaps of pages written and of
 * pages damaged. */
#ifndef FERRY_MIGRATION_APPLY_H
#define FERRY_MIGRATION_APPLY_H

#include <stdint.h>

#include "codec/compress.h"
#include "migration/wire.h"
#include "vm/memory.h"

struct postcopy;

struct page_writer {
	const struct guest_mem *mem;
	uint64_t npages;
	uint64_t *written; /* pages the stream wrote; the others are still zero */
	uint64_t *damaged; /* pages whose newest copy failed its own hash (LPAGES) */
	struct compressor lz4, zstd;
	uint8_t *scratch; /* a decompressed payload */
	/* Read by other threads with __atomic loads. */
	uint64_t pages, batches, decompress_ns;
	uint64_t damaged_copies; /* LPAGES pages that failed their hash */
	/* After the switch to post-copy: every page is placed through it,
	 * whole (recv/postcopy.h); set before a batch of that round comes. */
	struct postcopy *place;
};

int page_writer_init(struct page_writer *w, const struct guest_mem *mem, uint64_t *written,
		     uint64_t *damaged);
void page_writer_free(struct page_writer *w);
/* Apply one PAGES or ZPAGES body (type) of the given round; -EINVAL (or
 * -EPROTO) with err_msg() for a malformed one, which writes nothing. */
int page_writer_apply(struct page_writer *w, uint32_t type, const void *body, uint32_t len,
		      uint32_t round);
/* Read the body of a PAGES, LPAGES or ZPAGES record (its header in hdr)
 * from c and apply it. Raw pages are read straight into their place in
 * guest memory, one pass fewer over every byte: that memory is scratch
 * until COMMIT, so a PAGES record that fails its checksum (computed piece
 * by piece as it lands) only fails the migration; the pages are marked
 * written before they are read into, so that a failed attempt's are zeroed
 * (recv/ready_mem.h). LPAGES, sent from a running guest's memory, has a
 * hash per raw page: a page that fails it is only marked damaged (it is
 * dirty at the source, and a later round sends it again); a page still
 * damaged at END fails the migration. A record with XBZRLE deltas, or
 * compressed, is read whole first (deltas are checked before anything is
 * written). buf is the channel's record buffer. */
int page_writer_recv(struct page_writer *w, struct chan *c, const struct rec_header *hdr,
		     struct wire_buf *buf, uint32_t round);

#endif
