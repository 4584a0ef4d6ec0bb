/* The sender's encoder (send/encoder.h): zero, raw and XBZRLE pages into a
 * batch, copies while the guest runs and guest memory in place when it is
 * paused, and the cache kept equal to what the destination holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/digest.h"
#include "codec/xbzrle.h"
#include "migration/send/encoder.h"
#include "stream/format.h"
#include "stream/record.h"
#include "vm/memory.h"

#define NPAGES 64
#define PAGE   FERRY_PAGE_SIZE

struct fixture {
	struct guest_mem mem;
	struct encoder enc;
	struct batch b;
};

static uint8_t *page(struct fixture *f, uint64_t gfn)
{
	return mem_host(&f->mem, gfn * PAGE, PAGE);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_int_equal(mem_create(&f->mem, NPAGES * PAGE, MEM_ANON), 0);
	assert_int_equal(encoder_init(&f->enc, 32 * PAGE, NPAGES, false), 0);
	f->b.buf = malloc(BATCH_BUF_BYTES);
	for (uint64_t g = 1; g < 4; g++)
		for (unsigned i = 0; i < PAGE; i++)
			page(f, g)[i] = (uint8_t)(g * 31 + i * 7);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	encoder_free(&f->enc);
	mem_destroy(&f->mem);
	free(f->b.buf);
	free(f);
	return 0;
}

/* The payload as one buffer. */
static void gather(const struct batch *b, uint8_t *out)
{
	size_t at = 0;

	for (int i = 0; i < b->niov; i++) {
		memcpy(out + at, b->iov[i].iov_base, b->iov[i].iov_len);
		at += b->iov[i].iov_len;
	}
	assert_int_equal(at, b->payload_len);
}

/* Round 0: page 0 (zero) goes without payload, 1-3 raw, copied while the
 * guest runs: a later write does not change what goes out. */
static void test_round0_copies(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 0, 1, 2, 3 };
	static uint8_t payload[4 * PAGE];

	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 4, 0, false);
	assert_int_equal(f->b.count, 4);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_ZERO);
	for (int i = 1; i < 4; i++) {
		assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[i]), PAGE_RAW);
		assert_int_equal(PAGE_ENTRY_GFN(f->b.entries[i]), i);
	}
	assert_int_equal(f->b.payload_len, 3 * PAGE);
	assert_int_equal(f->b.niov, 1); /* neighbouring copies go as one piece */
	page(f, 2)[100] ^= 0xff;	/* the guest writes after the copy */
	gather(&f->b, payload);
	assert_int_not_equal(payload[PAGE + 100], page(f, 2)[100]);
	assert_int_equal(f->enc.counts.zero, 1);
	assert_int_equal(f->enc.counts.raw, 3);
}

/* Without deltas the encoder hashes the record as it copies: its checksum
 * is the one the record's bytes give. */
static void test_checksum_while_copying(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 0, 1, 2, 3 };
	struct iovec iov[BATCH_PAGES + 2];
	struct rec_pages fixed;
	struct rec_header hdr;

	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 4, 0, false);
	assert_true(f->b.hashed);
	fixed = (struct rec_pages){ .count = f->b.count, .round = f->b.round };
	iov[0] = (struct iovec){ &fixed, sizeof(fixed) };
	iov[1] = (struct iovec){ f->b.entries, 8ull * f->b.count };
	memcpy(iov + 2, f->b.iov, (size_t)f->b.niov * sizeof(*iov));
	rec_header_init(&hdr, REC_PAGES, iov, f->b.niov + 2);
	assert_true(hdr.checksum == f->b.checksum);
	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 4, 1, false); /* deltas possible */
	assert_false(f->b.hashed);
}

/* Without a cache or a codec, a running guest's raw pages go as LPAGES
 * out of guest memory itself: a hash per raw page, and a checksum over
 * the record's head (fixed part, entries, hashes) but not its payload. */
static void test_live(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 0, 1, 2, 3 };
	struct encoder enc;
	struct rec_pages fixed = { .count = 4, .round = 2 };
	struct rec_header hdr = { .type = REC_LPAGES };
	struct hash_state st;

	assert_int_equal(encoder_init(&enc, 0, NPAGES, true), 0);
	encoder_fill(&enc, &f->b, &f->mem, gfns, 4, 2, false);
	assert_true(f->b.live);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_ZERO);
	assert_int_equal(f->b.raw, 3);
	assert_int_equal(f->b.niov, 1); /* pages 1-3 are neighbours in guest memory */
	assert_ptr_equal(f->b.iov[0].iov_base, page(f, 1));
	assert_int_equal(f->b.iov[0].iov_len, 3 * PAGE);
	for (int i = 0; i < 3; i++)
		assert_true(f->b.hashes[i] == hash64(page(f, 1 + (uint64_t)i), PAGE));
	hdr.length = sizeof(fixed) + 4 * 8 + 3 * 8 + 3 * PAGE;
	rec_checksum_begin(&hdr, &st);
	hash_update(&st, &fixed, sizeof(fixed));
	hash_update(&st, f->b.entries, 4 * 8);
	hash_update(&st, f->b.hashes, 3 * 8);
	assert_true(hash_end(&st) == f->b.checksum);
	encoder_fill(&enc, &f->b, &f->mem, gfns, 4, 2, true); /* paused: PAGES in place */
	assert_false(f->b.live);
	encoder_free(&enc);
	assert_int_equal(encoder_init(&enc, 32 * PAGE, NPAGES, true), 0); /* a cache: copies */
	encoder_fill(&enc, &f->b, &f->mem, gfns, 4, 0, false);
	assert_false(f->b.live);
	encoder_free(&enc);
}

/* Round 0 seeds the cache with what it sends, so a page re-sent later goes
 * as a delta that rebuilds it from that copy (unchanged: an empty delta);
 * a page round 0 did not leave there (it was zero then) misses once and is
 * cached as sent. */
static void test_deltas(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 1, 2 }, zero_then[] = { 4 };
	uint8_t before[PAGE], payload[2 * PAGE];
	uint32_t size;

	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 2, 0, false);
	encoder_fill(&f->enc, &f->b, &f->mem, zero_then, 1, 0, false);
	assert_int_equal(f->enc.xbzrle.seeded, 2);
	memcpy(before, page(f, 1), PAGE);
	page(f, 1)[10] ^= 1;
	page(f, 1)[3000] ^= 1;
	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 2, 1, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_XBZRLE);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[1]), PAGE_XBZRLE);
	assert_int_equal(PAGE_ENTRY_SIZE(f->b.entries[1]), 0);
	size = PAGE_ENTRY_SIZE(f->b.entries[0]);
	assert_true(size > 0 && size < 32);
	gather(&f->b, payload);
	assert_int_equal(xbzrle_check(payload, size), 0);
	xbzrle_apply(payload, size, before);
	assert_memory_equal(before, page(f, 1), PAGE);
	assert_int_equal(f->enc.xbzrle.hits, 2);
	assert_int_equal(f->enc.counts.xbzrle, 2);

	/* A miss, cached now; its digest says zeros: a delta of one line. */
	page(f, 4)[0] = 1;
	encoder_fill(&f->enc, &f->b, &f->mem, zero_then, 1, 1, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_XBZRLE);
	assert_true(PAGE_ENTRY_SIZE(f->b.entries[0]) <= DIGEST_LINE + 4);
	assert_int_equal(f->enc.xbzrle.misses, 1);
	assert_int_equal(f->enc.xbzrle.line_pages, 1);
	page(f, 4)[1] = 1;
	encoder_fill(&f->enc, &f->b, &f->mem, zero_then, 1, 2, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_XBZRLE);
	assert_int_equal(f->enc.xbzrle.hits, 3);
}

/* A page copied after a delta of any length starts 8-byte aligned: the
 * zero-page check reads it in words. */
static void test_copies_aligned(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 1, 2 };

	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 1, 1, false); /* cache page 1 */
	page(f, 1)[5] ^= 1;					  /* a 3-byte delta next */
	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 2, 2, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_XBZRLE);
	assert_int_equal(PAGE_ENTRY_SIZE(f->b.entries[0]) % 8 != 0, 1);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[1]), PAGE_RAW);
	assert_int_equal(f->b.niov, 2); /* not right after the delta: aligned */
	assert_int_equal((uintptr_t)f->b.iov[1].iov_base % 8, 0);
}

/* A page that went as zero leaves the cache; its digest says zeros, so
 * when it has content again a delta of lines rebuilds it. Where digests
 * do not fit in half the cache, it goes raw. */
static void test_zero_forgets(void **state)
{
	struct fixture *f = *state;
	uint64_t gfn = 3;
	struct encoder small;

	encoder_fill(&f->enc, &f->b, &f->mem, &gfn, 1, 1, false); /* cached */
	memset(page(f, 3), 0, PAGE);
	encoder_fill(&f->enc, &f->b, &f->mem, &gfn, 1, 2, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_ZERO);
	page(f, 3)[0] = 1;
	encoder_fill(&f->enc, &f->b, &f->mem, &gfn, 1, 3, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_XBZRLE);
	assert_int_equal(f->enc.xbzrle.line_pages, 1);

	assert_int_equal(encoder_init(&small, 8 * PAGE, NPAGES, false), 0);
	assert_null(small.digests);
	memset(page(f, 3), 0, PAGE);
	encoder_fill(&small, &f->b, &f->mem, &gfn, 1, 0, false);
	page(f, 3)[0] = 1;
	encoder_fill(&small, &f->b, &f->mem, &gfn, 1, 1, false);
	assert_int_equal(PAGE_ENTRY_ENC(f->b.entries[0]), PAGE_RAW);
	encoder_free(&small);
}

/* Paused, raw pages go out of guest memory in place, without a copy. */
static void test_in_place(void **state)
{
	struct fixture *f = *state;
	uint64_t gfns[] = { 1, 2 };

	encoder_fill(&f->enc, &f->b, &f->mem, gfns, 2, 0, true);
	assert_int_equal(f->b.used, 0);
	assert_ptr_equal(f->b.iov[0].iov_base, page(f, 1));
	assert_int_equal(f->b.iov[0].iov_len, 2 * PAGE); /* contiguous in guest memory */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round0_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checksum_while_copying, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copies_aligned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_forgets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_place, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
