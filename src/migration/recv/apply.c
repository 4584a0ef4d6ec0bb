#include "migration/recv/apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/xbzrle.h"
#include "migration/recv/postcopy.h"
#include "stream/record.h"
#include "transport/chan.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/time.h"

int page_writer_init(struct page_writer *w, const struct guest_mem *mem, uint64_t *written,
		     uint64_t *damaged)
{
	*w = (struct page_writer){ .mem = mem,
				   .npages = mem->size / FERRY_PAGE_SIZE,
				   .written = written,
				   .damaged = damaged };
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

/* A page's newest copy arrived whole (raw or zero): whatever damage an
 * older one had is gone. A delta does not mend: it applies to the copy. */
static void mend(struct page_writer *w, uint64_t gfn)
{
	if (bitmap_test_atomic(w->damaged, gfn))
		bitmap_clear_atomic(w->damaged, gfn);
}

/* Set by another thread (the switch), before this one reads a batch of
 * the post-copy round. */
static struct postcopy *placing(const struct page_writer *w)
{
	return __atomic_load_n(&w->place, __ATOMIC_ACQUIRE);
}

/* After the switch to post-copy every page is placed whole (recv/postcopy.h):
 * none is there to apply a delta to. */
static int place_pages(struct page_writer *w, const struct pages_view *v)
{
	const uint8_t *payload = v->payload;
	int rc = 0;

	for (uint32_t i = 0; i < v->count && rc == 0; i++) {
		uint64_t gfn = PAGE_ENTRY_GFN(v->entries[i]);

		switch (PAGE_ENTRY_ENC(v->entries[i])) {
		case PAGE_ZERO:
			rc = postcopy_place(placing(w), gfn, NULL);
			continue;
		case PAGE_RAW:
			rc = postcopy_place(placing(w), gfn, payload);
			payload += FERRY_PAGE_SIZE;
			continue;
		}
		rc = err_set(-EPROTO, "page %llu came as a delta after the switch to post-copy",
			     (unsigned long long)gfn);
	}
	__atomic_fetch_add(&w->pages, v->count, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->batches, 1, __ATOMIC_RELAXED);
	return rc;
}

/* v's pages into guest memory. A view without payload (recv_pages) has its
 * raw pages in place already: only its zero pages are left to write. */
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
			mend(w, gfn);
			continue;
		case PAGE_RAW:
			mend(w, gfn);
			if (!payload)
				continue;
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
	if (rc == 0 && hash64(w->scratch, z->pages.payload_bytes) != z->payload_hash)
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
	if (rc == 0 && placing(w))
		return place_pages(w, &z.pages);
	if (rc == 0)
		rc = check_deltas(&z.pages);
	if (rc == 0)
		write_pages(w, &z.pages);
	return rc;
}

/* Raw pages read and hashed this many at a time, while still in cache. */
#define DIRECT_CHUNK_PAGES 32

/* Raw pages just read, gfns[0..n), each against its own hash (LPAGES).
 * A page that does not match is marked damaged: a running guest changed
 * it under the source's send, so a later round brings it again, or the
 * link broke it and END says so (a page still damaged there fails the
 * migration). */
static void check_each(struct page_writer *w, const uint64_t *gfns, uint32_t n,
		       const uint64_t *hashes)
{
	for (uint32_t k = 0; k < n; k++) {
		const void *page = mem_host(w->mem, gfns[k] * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);

		if (hash64(page, FERRY_PAGE_SIZE) == hashes[k])
			continue;
		bitmap_set_atomic(w->damaged, gfns[k]);
		__atomic_fetch_add(&w->damaged_copies, 1, __ATOMIC_RELAXED);
	}
}

/* v's raw payloads, in entry order, straight into their pages; hashed
 * into the record's checksum (st), or with LPAGES each against its own
 * (hashes, one per raw page). */
static int read_raw_pages(struct page_writer *w, struct chan *c, const struct pages_view *v,
			  struct hash_state *st, const uint64_t *hashes)
{
	struct iovec iov[DIRECT_CHUNK_PAGES], landed[DIRECT_CHUNK_PAGES];
	uint64_t gfns[DIRECT_CHUNK_PAGES];
	uint32_t i = 0;
	int rc = 0;

	while (rc == 0 && i < v->count) {
		uint32_t pages = 0;
		int n = 0;

		for (; i < v->count && pages < DIRECT_CHUNK_PAGES; i++) {
			uint64_t gfn = PAGE_ENTRY_GFN(v->entries[i]);
			uint8_t *dst = mem_host(w->mem, gfn * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);

			if (PAGE_ENTRY_ENC(v->entries[i]) != PAGE_RAW)
				continue;
			/* Before the read: a failure leaves it to be zeroed. */
			bitmap_set_atomic(w->written, gfn);
			if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == dst)
				iov[n - 1].iov_len += FERRY_PAGE_SIZE;
			else
				iov[n++] = (struct iovec){ dst, FERRY_PAGE_SIZE };
			gfns[pages++] = gfn;
		}
		memcpy(landed, iov, (size_t)n * sizeof(*iov));
		rc = chan_readv(c, iov, n);
		if (rc == 0 && hashes) {
			check_each(w, gfns, pages, hashes);
			hashes += pages;
			continue;
		}
		for (int k = 0; rc == 0 && k < n; k++)
			hash_update(st, landed[k].iov_base, landed[k].iov_len);
	}
	return rc;
}

/* The rest of a record whose first head bytes are in buf: read whole and
 * applied as any other (its checksum first, so that damage in transit is
 * named as such, then its list). */
static int recv_rest(struct page_writer *w, struct chan *c, const struct rec_header *hdr,
		     struct wire_buf *buf, uint32_t head, uint32_t round)
{
	int rc = chan_read(c, buf->data + head, rec_padded(hdr->length) - head);

	if (rc == 0)
		rc = rec_checksum_check(hdr, buf->data);
	return rc < 0 ? rc : page_writer_apply(w, hdr->type, buf->data, hdr->length, round);
}

/* A PAGES record: its head first; raw pages straight into guest memory
 * when that is all it carries, else (deltas, or a head that does not add
 * up) the whole record into buf. */
static int recv_pages(struct page_writer *w, struct chan *c, const struct rec_header *hdr,
		      struct wire_buf *buf, uint32_t round)
{
	struct hash_state st;
	struct pages_view v;
	uint32_t count = 0, head = sizeof(struct rec_pages);
	int rc = wire_buf_reserve(buf, rec_padded(hdr->length) + 8);

	if (rc == 0)
		rc = chan_read(c, buf->data, head);
	if (rc < 0)
		return rc;
	if (rec_pages_count(REC_PAGES, (const void *)buf->data, hdr->length, &count) < 0)
		return recv_rest(w, c, hdr, buf, head, round);
	rc = chan_read(c, buf->data + head, 8ull * count);
	head += 8 * count;
	if (rc < 0)
		return rc;
	if (rec_parse_pages_head(REC_PAGES, buf->data, hdr->length, w->npages, &v) < 0 ||
	    v.round != round || v.payload_bytes != (uint64_t)v.raw * FERRY_PAGE_SIZE)
		return recv_rest(w, c, hdr, buf, head, round);
	rec_checksum_begin(hdr, &st);
	hash_update(&st, buf->data, head);
	rc = read_raw_pages(w, c, &v, &st, NULL); /* whole pages: the body needs no padding */
	if (rc == 0)
		rc = rec_checksum_end(hdr, &st);
	if (rc == 0)
		write_pages(w, &v); /* the zero pages, once the record is known good */
	return rc;
}

/* An LPAGES record: its head (list and page hashes) read and checked
 * whole, its checksum before its meaning (damage in transit is named so),
 * then each raw page straight into guest memory and checked against its own
 * hash (check_each). */
static int recv_live(struct page_writer *w, struct chan *c, const struct rec_header *hdr,
		     struct wire_buf *buf, uint32_t round)
{
	struct hash_state st;
	struct pages_view v;
	uint32_t count = 0, head = sizeof(struct rec_pages), covers = 0;
	int rc = wire_buf_reserve(buf, head + 16ull * PAGES_MAX_COUNT);

	if (rc == 0)
		rc = chan_read(c, buf->data, head);
	if (rc == 0)
		rc = rec_pages_count(REC_LPAGES, (const void *)buf->data, hdr->length, &count);
	if (rc == 0)
		rc = chan_read(c, buf->data + head, 8ull * count);
	head += 8 * count;
	if (rc == 0) { /* the page hashes, as many as the list says raw pages */
		covers = rec_checksum_covers(REC_LPAGES, buf->data, hdr->length);
		rc = covers > head ? chan_read(c, buf->data + head, covers - head) : 0;
	}
	if (rc < 0)
		return rc;
	rec_checksum_begin(hdr, &st);
	hash_update(&st, buf->data, covers);
	rc = rec_checksum_end(hdr, &st);
	if (rc == 0)
		rc = rec_parse_pages_head(REC_LPAGES, buf->data, hdr->length, w->npages, &v);
	if (rc == 0 && covers != head + 8ull * v.raw)
		rc = err_set(-EINVAL, "LPAGES record is shorter than its page hashes");
	if (rc == 0 && v.round != round)
		rc = err_set(-EPROTO, "a page batch of round %u arrived during round %u", v.round,
			     round);
	if (rc < 0)
		return rc;
	write_pages(w, &v); /* zero pages; every page whole until check_each says not */
	return read_raw_pages(w, c, &v, NULL, (const uint64_t *)(buf->data + head));
}

int page_writer_recv(struct page_writer *w, struct chan *c, const struct rec_header *hdr,
		     struct wire_buf *buf, uint32_t round)
{
	int rc;

	if (placing(w) && hdr->type == REC_LPAGES)
		return err_set(-EPROTO, "a running guest's pages after the switch to post-copy");
	if (hdr->type == REC_PAGES && !placing(w))
		return recv_pages(w, c, hdr, buf, round);
	if (hdr->type == REC_LPAGES)
		return recv_live(w, c, hdr, buf, round);
	rc = wire_recv_body(c, hdr, buf);
	return rc < 0 ? rc : page_writer_apply(w, hdr->type, buf->data, hdr->length, round);
}
