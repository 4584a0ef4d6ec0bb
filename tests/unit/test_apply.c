/* Receiving pages (recv/apply.h) from a socket: LPAGES, whose raw pages
 * carry a hash each. A page that fails its hash is marked damaged, not
 * refused; the next whole copy (raw or zero) mends it, a delta does not;
 * a damaged head is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "migration/recv/apply.h"
#include "stream/format.h"
#include "stream/record.h"
#include "util/bitmap.h"
#include "util/error.h"

#define NPAGES 64
#define PAGE   FERRY_PAGE_SIZE

struct fixture {
	struct guest_mem mem;
	struct page_writer w;
	uint64_t written[BITMAP_WORDS(NPAGES)], damaged[BITMAP_WORDS(NPAGES)];
	struct chan tx, rx;
	struct wire_buf buf;
	uint8_t page[2][PAGE];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_int_equal(mem_create(&f->mem, NPAGES * PAGE, MEM_ANON), 0);
	assert_int_equal(page_writer_init(&f->w, &f->mem, f->written, f->damaged), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	chan_init_fd(&f->tx, sv[0]);
	chan_init_fd(&f->rx, sv[1]);
	f->rx.timeout_ms = 1000;
	for (unsigned i = 0; i < PAGE; i++) {
		f->page[0][i] = (uint8_t)(i * 7 + 1);
		f->page[1][i] = (uint8_t)(i * 13 + 5);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->tx.fd);
	close(f->rx.fd);
	wire_buf_free(&f->buf);
	page_writer_free(&f->w);
	mem_destroy(&f->mem);
	free(f);
	return 0;
}

/* LPAGES of round 0: gfn 1 zero, gfns 5 and 6 raw (page[0], page[1]);
 * the hash of page i is spoiled if bad & (1 << i). */
static void send_live(struct fixture *f, unsigned bad)
{
	struct rec_pages fixed = { .count = 3, .round = 0 };
	uint64_t entries[3] = { PAGE_ENTRY(1, PAGE_ZERO), PAGE_ENTRY(5, PAGE_RAW),
				PAGE_ENTRY(6, PAGE_RAW) };
	uint64_t hashes[2];
	struct iovec iov[5] = { { &fixed, sizeof(fixed) },
				{ entries, sizeof(entries) },
				{ hashes, sizeof(hashes) },
				{ f->page[0], PAGE },
				{ f->page[1], PAGE } };
	struct rec_header hdr = { .type = REC_LPAGES,
				  .length = sizeof(fixed) + sizeof(entries) + sizeof(hashes) +
					    2 * PAGE };
	struct hash_state st;

	for (int i = 0; i < 2; i++)
		hashes[i] = hash64(f->page[i], PAGE) ^ (bad >> i & 1);
	rec_checksum_begin(&hdr, &st);
	for (int i = 0; i < 3; i++)
		hash_update(&st, iov[i].iov_base, iov[i].iov_len);
	assert_int_equal(wire_send_hashed(&f->tx, REC_LPAGES, iov, 5, hash_end(&st)), 0);
}

/* The next record from the socket into guest memory. */
static int receive(struct fixture *f)
{
	struct rec_header hdr;
	int rc = wire_recv_header(&f->rx, &hdr, &f->buf);

	return rc < 0 ? rc : page_writer_recv(&f->w, &f->rx, &hdr, &f->buf, 0);
}

static void send_pages(struct fixture *f, uint64_t entry, const void *payload, uint32_t len)
{
	struct rec_pages fixed = { .count = 1, .round = 0 };
	struct iovec iov[3] = { { &fixed, sizeof(fixed) },
				{ &entry, sizeof(entry) },
				{ (void *)payload, len } };

	assert_int_equal(wire_send(&f->tx, REC_PAGES, iov, 3), 0);
}

static void test_whole(void **state)
{
	struct fixture *f = *state;

	send_live(f, 0);
	assert_int_equal(receive(f), 0);
	assert_memory_equal(mem_host(&f->mem, 5 * PAGE, PAGE), f->page[0], PAGE);
	assert_memory_equal(mem_host(&f->mem, 6 * PAGE, PAGE), f->page[1], PAGE);
	assert_int_equal(bitmap_count(f->damaged, NPAGES), 0);
	assert_int_equal(f->w.pages, 3);
}

/* A page that fails its hash is damaged, its neighbour is not; a raw copy
 * mends it. */
static void test_damaged_then_mended(void **state)
{
	struct fixture *f = *state;

	send_live(f, 2);
	assert_int_equal(receive(f), 0);
	assert_true(bitmap_test(f->damaged, 6));
	assert_int_equal(bitmap_count(f->damaged, NPAGES), 1);
	assert_int_equal(f->w.damaged_copies, 1);
	send_pages(f, PAGE_ENTRY(6, PAGE_RAW), f->page[1], PAGE);
	assert_int_equal(receive(f), 0);
	assert_int_equal(bitmap_count(f->damaged, NPAGES), 0);
}

/* A zero page mends as a raw one does; a delta applies to the damaged
 * copy, so the page stays damaged. */
static void test_zero_mends_delta_does_not(void **state)
{
	struct fixture *f = *state;
	uint8_t delta[] = { 0x00, 0x01, 0xaa }; /* first byte becomes 0xaa */

	send_live(f, 3);
	assert_int_equal(receive(f), 0);
	assert_int_equal(bitmap_count(f->damaged, NPAGES), 2);
	send_pages(f, PAGE_ENTRY(5, PAGE_ZERO), NULL, 0);
	send_pages(f, PAGE_ENTRY_LEN(6, PAGE_XBZRLE, sizeof(delta)), delta, sizeof(delta));
	assert_int_equal(receive(f), 0);
	assert_int_equal(receive(f), 0);
	assert_false(bitmap_test(f->damaged, 5));
	assert_true(bitmap_test(f->damaged, 6));
	assert_int_equal(*(uint8_t *)mem_host(&f->mem, 5 * PAGE, 1), 0);
}

/* Send one LPAGES record of page 5 whose list becomes changed after its
 * checksum was taken (damage in transit). */
static void send_changed_head(struct fixture *f, uint64_t changed)
{
	struct rec_pages fixed = { .count = 1, .round = 0 };
	uint64_t entry = PAGE_ENTRY(5, PAGE_RAW), hash = hash64(f->page[0], PAGE);
	struct iovec iov[4] = {
		{ &fixed, sizeof(fixed) }, { &entry, 8 }, { &hash, 8 }, { f->page[0], PAGE }
	};
	struct rec_header hdr = { .type = REC_LPAGES, .length = 8 + 8 + 8 + PAGE };
	struct hash_state st;

	rec_checksum_begin(&hdr, &st);
	hash_update(&st, &fixed, sizeof(fixed));
	hash_update(&st, &entry, 8);
	hash_update(&st, &hash, 8);
	entry = changed;
	assert_int_equal(wire_send_hashed(&f->tx, REC_LPAGES, iov, 4, hash_end(&st)), 0);
}

/* The head (list, hashes) is the record's checksum's: damage there is
 * refused, as in any record. */
static void test_damaged_head(void **state)
{
	struct fixture *f = *state;

	send_changed_head(f, PAGE_ENTRY(7, PAGE_RAW));
	assert_int_equal(receive(f), -EINVAL);
	assert_non_null(strstr(err_msg(), "LPAGES record failed its checksum"));
}

/* A list damaged in transit so that it names a page beyond guest memory is
 * named for what happened: the checksum is checked before the list is
 * read for its meaning. */
static void test_damage_named(void **state)
{
	struct fixture *f = *state;

	send_changed_head(f, PAGE_ENTRY(1ull << 30, PAGE_RAW));
	assert_int_equal(receive(f), -EINVAL);
	assert_non_null(strstr(err_msg(), "LPAGES record failed its checksum"));
}

/* LPAGES carries zero and raw pages only (the record is otherwise sound:
 * its checksum covers its head, as the protocol says). */
static void test_no_deltas(void **state)
{
	struct fixture *f = *state;
	struct rec_pages fixed = { .count = 1, .round = 0 };
	uint64_t entry = PAGE_ENTRY_LEN(5, PAGE_XBZRLE, 8);
	uint8_t delta[8] = { 0 };
	struct iovec iov[3] = { { &fixed, sizeof(fixed) }, { &entry, 8 }, { delta, 8 } };
	struct rec_header hdr = { .type = REC_LPAGES, .length = 8 + 8 + 8 };
	struct hash_state st;

	rec_checksum_begin(&hdr, &st);
	hash_update(&st, &fixed, sizeof(fixed));
	hash_update(&st, &entry, 8);
	assert_int_equal(wire_send_hashed(&f->tx, REC_LPAGES, iov, 3, hash_end(&st)), 0);
	assert_int_equal(receive(f), -EINVAL);
	assert_non_null(strstr(err_msg(), "XBZRLE"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_then_mended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_mends_delta_does_not, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_deltas, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
