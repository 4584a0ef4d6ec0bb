/* A batch of pages on its way out: the pipeline owns the batches (and their
 * buffers) and circulates them; the encoder fills one, a channel's worker
 * compresses and writes it. */
#ifndef FERRY_MIGRATION_SEND_BATCH_H
#define FERRY_MIGRATION_SEND_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/page.h"

#define BATCH_PAGES 128
/* A compressed frame must save at least 1/BATCH_SHRINK_MIN of the batch, or
 * the batch goes raw (the destination's decompression would cost more). */
#define BATCH_SHRINK_MIN 32
/* Room for every page's copy, each starting 8-byte aligned (a delta before
 * it may end anywhere). */
#define BATCH_BUF_BYTES (BATCH_PAGES * (FERRY_PAGE_SIZE + 8))

struct batch {
	uint32_t round, count;
	uint64_t entries[BATCH_PAGES]; /* page entries (stream/format.h) */
	struct iovec iov[BATCH_PAGES]; /* the payload, in entry order */
	int niov;
	uint32_t payload_len;
	uint8_t *buf;  /* BATCH_BUF_BYTES: copies and deltas */
	uint32_t used; /* bytes of buf in use */
	bool hashed;   /* PAGES: checksum computed while copying */
	bool live;     /* LPAGES: raw pages in guest memory, a hash each;
			* checksum over the head */
	uint64_t checksum;
	uint32_t raw;		      /* raw pages, with live */
	uint64_t hashes[BATCH_PAGES]; /* with live, one per raw page */
	struct batch *next;
};

/* Empty b for a new round's pages (its buffer stays). */
static inline void batch_reset(struct batch *b, uint32_t round)
{
	b->round = round;
	b->count = 0;
	b->niov = 0;
	b->payload_len = 0;
	b->used = 0;
	b->hashed = false;
	b->live = false;
	b->raw = 0;
}

#endif
