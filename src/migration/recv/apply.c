#include "migration/recv/apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "codec/xbzrle.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/time.h"

int page_writer_init(struct page_writer *w, const struct guest_mem *mem, uint64_t *written)
{
	*w = (struct page_writer){ .mem = mem,
				   .npages = mem->size / FERRY_PAGE_SIZE,
				   .written = written };
	w->scratch = malloc((size_t)PAGES_MAX_COUNT * FERRY_PAGE_SIZE);
	return w->scratch ? 0 : err_set(-ENOMEM, "out of memory for a channel");
}

void page_writer_free(struct page_writer *w)
{
	compressor_free(&w->lz4);
	compressor_free(&w->zstd);
	free(w->scratch);
	w->scratch = NULL;
}

/* XBZRLE deltas are checked before anything is written: a bad one anywhere
 * leaves memory as it was. */
static int check_deltas(const struct pages_view *v)
{
	const uint8_t *payload = v->payload;

	for (uint32_t i = 0; i < v->count; i++) {
		uint32_t enc = PAGE_ENTRY_ENC(v->entries[i]), size = PAGE_ENTRY_SIZE(v->entries[i]);

		if (enc == PAGE_XBZRLE && xbzrle_check(payload, size) < 0)
			return err_wrap(-EINVAL, "page %llu",
					(unsigned long long)PAGE_ENTRY_GFN(v->entries[i]));
		payload += enc == PAGE_RAW ? FERRY_PAGE_SIZE : size;
	}
	return 0;
}

static void write_pages(struct page_writer *w, const struct pages_view *v)
{
	const uint8_t *payload = v->payload;

	for (uint32_t i = 0; i < v->count; i++) {
		uint64_t gfn = PAGE_ENTRY_GFN(v->entries[i]);
		uint32_t size = PAGE_ENTRY_SIZE(v->entries[i]);
		uint8_t *dst = mem_host(w->mem, gfn * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);

		switch (PAGE_ENTRY_ENC(v->entries[i])) {
		case PAGE_ZERO: /* fresh memory is zero: do not fault it in for that */
			if (bitmap_test(w->written, gfn))
				memset(dst, 0, FERRY_PAGE_SIZE);
			continue;
		case PAGE_RAW:
			memcpy(dst, payload, FERRY_PAGE_SIZE);
			payload += FERRY_PAGE_SIZE;
			break;
		default:
			xbzrle_apply(payload, size, dst);
			payload += size;
		}
		/* Other channels set bits in the same words. */
		bitmap_set_atomic(w->written, gfn);
	}
	__atomic_fetch_add(&w->pages, v->count, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->batches, 1, __ATOMIC_RELAXED);
}

static int decompress(struct page_writer *w, struct zpages_view *z)
{
	struct compressor *c = z->codec == ZPAGES_LZ4 ? &w->lz4 : &w->zstd;
	uint64_t cpu0 = time_thread_cpu_ns();
	int rc = 0;

	if (!c->backend)
		rc = compressor_init(c, z->codec == ZPAGES_LZ4 ? COMPRESS_LZ4 : COMPRESS_ZSTD, 1);
	if (rc == 0)
		rc = c->backend->decompress(c, z->frame, z->frame_len, w->scratch,
					    z->pages.payload_bytes);
	if (rc == 0 && XXH3_64bits(w->scratch, z->pages.payload_bytes) != z->payload_hash)
		rc = err_set(-EINVAL,
			     "it is corrupt: it does not decompress to what was compressed");
	__atomic_fetch_add(&w->decompress_ns, time_thread_cpu_ns() - cpu0, __ATOMIC_RELAXED);
	z->pages.payload = w->scratch;
	return rc < 0 ? err_wrap(rc, "compressed page batch of round %u", z->pages.round) : 0;
}

int page_writer_apply(struct page_writer *w, uint32_t type, const void *body, uint32_t len,
		      uint32_t round)
{
	struct zpages_view z;
	int rc;

	if (type == REC_ZPAGES) {
		rc = rec_parse_zpages(body, len, w->npages, &z);
		if (rc == 0)
			rc = decompress(w, &z);
	} else {
		rc = rec_parse_pages(body, len, w->npages, &z.pages);
	}
	if (rc == 0 && z.pages.round != round)
		rc = err_set(-EPROTO, "a page batch of round %u arrived during round %u",
			     z.pages.round, round);
	if (rc == 0)
		rc = check_deltas(&z.pages);
	if (rc == 0)
		write_pages(w, &z.pages);
	return rc;
}
