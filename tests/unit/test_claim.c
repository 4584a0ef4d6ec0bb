/* Taking memory for a guest leaves the host its reserve (vm/memory.h):
 * the room check and the pre-fault refuse, with a sentence, where the host
 * would have to give it up, and take the memory where it need not; pages
 * already in place cost nothing. The reserve is set relative to what the
 * host has now, so the boundary is this host's, whatever its size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/error.h"
#include "util/page.h"
#include "vm/memory.h"

#define MiB (1ull << 20)

static uint64_t resident_bytes(const struct guest_mem *mem)
{
	uint64_t pages = mem->size / FERRY_PAGE_SIZE, n = 0;
	unsigned char *vec = malloc(pages);

	assert_non_null(vec);
	assert_int_equal(mincore(mem->regions[0].host, mem->size, vec), 0);
	for (uint64_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n * FERRY_PAGE_SIZE;
}

static void test_room(void **unused)
{
	(void)unused;
	mem_set_host_reserve(0);
	assert_int_equal(mem_check_room(64 * MiB, MEM_ANON), 0);
	mem_set_host_reserve(mem_host_available() - 32 * MiB);
	assert_int_equal(mem_check_room(512 * MiB, MEM_ANON), -ENOMEM);
	assert_non_null(strstr(err_msg(), "more than this host can give now"));
	assert_non_null(strstr(err_msg(), "--host-reserve"));
	assert_int_equal(mem_check_room(512 * MiB, MEM_HUGETLB), 0); /* the pool decides */
}

/* 2 GiB asked with 256 MiB to give: some of it comes in, then a refusal.
 * What the host has moves with the rest of the machine (the suite runs this
 * test alone), so the bound is loose: it stops far short of the whole. */
static void test_populate_stops_short(void **unused)
{
	struct guest_mem m;

	(void)unused;
	assert_int_equal(mem_create(&m, 2048 * MiB, MEM_ANON), 0);
	mem_set_host_reserve(mem_host_available() - 256 * MiB);
	assert_int_equal(mem_populate(&m), -ENOMEM);
	assert_non_null(strstr(err_msg(), "the host ran short of memory with"));
	assert_non_null(strstr(err_msg(), "of the guest's 2.0 GiB in place"));
	assert_true(resident_bytes(&m) < 1024 * MiB);
	mem_destroy(&m);
}

/* Within the reserve all of it comes in; then, in place, it asks nothing
 * more of the host, though it has less to give than one step. */
static void test_populate_within_then_in_place(void **unused)
{
	struct guest_mem m;

	(void)unused;
	mem_set_host_reserve(0);
	assert_int_equal(mem_create(&m, 256 * MiB, MEM_ANON), 0);
	assert_int_equal(mem_populate(&m), 0);
	assert_int_equal(resident_bytes(&m), 256 * MiB);
	mem_set_host_reserve(mem_host_available() - MEM_CLAIM_STEP / 2);
	assert_int_equal(mem_claim_check(&m, m.regions[0].host, MEM_CLAIM_STEP, 0), 0);
	assert_int_equal(mem_populate(&m), 0);
	mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_populate_stops_short),
		cmocka_unit_test(test_populate_within_then_in_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
