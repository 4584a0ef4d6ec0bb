/* Post-copy's memory (vm/uffd.h): a thread that touches a page not there
 * waits until it is placed and then reads what was placed; a page there
 * already is never overwritten. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/page.h"
#include "vm/memory.h"
#include "vm/uffd.h"

#define PAGES 64

struct reader {
	const uint8_t *page;
	uint8_t seen;
	int tid;
};

static void *read_page(void *arg)
{
	struct reader *r = arg;

	__atomic_store_n(&r->tid, (int)gettid(), __ATOMIC_RELEASE);
	r->seen = *(volatile const uint8_t *)(r->page + 100);
	return NULL;
}

/* One page forgotten and touched by another thread: the fault names it
 * and the thread, and what is placed is what the thread reads. */
static void check_fetch(enum mem_backend backend)
{
	struct guest_mem mem;
	struct uffd u;
	uint8_t src[FERRY_PAGE_SIZE];
	uint8_t *page;
	struct uffd_fault f;
	struct reader r;
	pthread_t t;

	assert_int_equal(mem_create(&mem, PAGES * FERRY_PAGE_SIZE * 64ull, backend), 0);
	page = mem_host(&mem, 7 * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
	memset(page, 0x11, FERRY_PAGE_SIZE);
	assert_int_equal(uffd_open(&u, &mem), 0);
	assert_int_equal(uffd_next_fault(&u, 0, &f), -ETIMEDOUT);
	mem_forget(&mem, 7 * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
	r = (struct reader){ .page = page };
	assert_int_equal(pthread_create(&t, NULL, read_page, &r), 0);
	assert_int_equal(uffd_next_fault(&u, 10000, &f), 0);
	assert_int_equal(f.addr, (uint64_t)(uintptr_t)page);
	assert_int_equal(f.tid, __atomic_load_n(&r.tid, __ATOMIC_ACQUIRE));
	memset(src, 0x22, sizeof(src));
	assert_int_equal(uffd_place(&u, page, src), 0);
	pthread_join(t, NULL);
	assert_int_equal(r.seen, 0x22);
	/* There already: neither a copy nor zeros replace it. */
	memset(src, 0x33, sizeof(src));
	assert_int_equal(uffd_place(&u, page, src), 1);
	assert_int_equal(uffd_zero(&u, page), 1);
	assert_int_equal(page[0], 0x22);
	/* Forgotten, then zeros. */
	mem_forget(&mem, 9 * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
	assert_int_equal(uffd_zero(&u, mem_host(&mem, 9 * FERRY_PAGE_SIZE, 1)), 0);
	assert_int_equal(*(uint8_t *)mem_host(&mem, 9 * FERRY_PAGE_SIZE, 1), 0);
	uffd_close(&u);
	mem_destroy(&mem);
}

/* A set of pages forgotten, but the ones excepted: the others keep their
 * contents. */
static void test_forget_set(void **unused)
{
	struct guest_mem mem;
	uint64_t bits[1] = { 1u << 1 | 1u << 2 | 1u << 5 }, except[1] = { 1u << 2 };

	(void)unused;
	assert_int_equal(mem_create(&mem, PAGES * FERRY_PAGE_SIZE * 64ull, MEM_ANON), 0);
	for (unsigned g = 0; g < 8; g++)
		memset(mem_host(&mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE), 0x40 + g,
		       FERRY_PAGE_SIZE);
	mem_forget_set(&mem, bits, except, 8);
	for (unsigned g = 0; g < 8; g++)
		assert_int_equal(*(uint8_t *)mem_host(&mem, g * FERRY_PAGE_SIZE + 100, 1),
				 g == 1 || g == 5 ? 0 : 0x40 + g);
	mem_destroy(&mem);
}

static void test_anon(void **unused)
{
	(void)unused;
	check_fetch(MEM_ANON);
}

static void test_memfd(void **unused)
{
	(void)unused;
	check_fetch(MEM_MEMFD);
}

static void test_hugetlb_refused(void **unused)
{
	(void)unused;
	assert_int_equal(uffd_supported(MEM_ANON), 0);
	assert_int_equal(uffd_supported(MEM_HUGETLB), -EOPNOTSUPP);
	assert_non_null(strstr(err_msg(), "2 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anon),
		cmocka_unit_test(test_forget_set),
		cmocka_unit_test(test_memfd),
		cmocka_unit_test(test_hugetlb_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
