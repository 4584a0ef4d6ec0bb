/* Received pages into guest memory: a PAGES or ZPAGES record, checked,
 * decompressed and written. One writer per channel (its own decompression
 * contexts and scratch); all share the bitmap of pages written. */
#ifndef FERRY_MIGRATION_APPLY_H
#define FERRY_MIGRATION_APPLY_H

#include <stdint.h>

#include "codec/compress.h"
#include "vm/memory.h"

struct page_writer {
	const struct guest_mem *mem;
	uint64_t npages;
	uint64_t *written; /* pages the stream wrote; the others are still zero */
	struct compressor lz4, zstd;
	uint8_t *scratch; /* a decompressed payload */
	/* Read by other threads with __atomic loads. */
	uint64_t pages, batches, decompress_ns;
};

int page_writer_init(struct page_writer *w, const struct guest_mem *mem, uint64_t *written);
void page_writer_free(struct page_writer *w);
/* Apply one PAGES or ZPAGES body (type) of the given round; -EINVAL (or
 * -EPROTO) with err_msg() for a malformed one, which writes nothing. */
int page_writer_apply(struct page_writer *w, uint32_t type, const void *body, uint32_t len,
		      uint32_t round);

#endif
