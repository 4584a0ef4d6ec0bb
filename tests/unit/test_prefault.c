/* The background prefault (vm/prefault.h) yields to the receivers: while
 * they are busy it faults nothing in; while they wait it faults all of
 * guest memory in, keeping what was written there; and it stops, saying
 * why, where the host would have to give up its reserve. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/page.h"
#include "util/time.h"
#include "vm/memory.h"
#include "vm/prefault.h"

#define MEM (8ull << 20)

/* Receivers at work: counts the prefault's looks. */
static bool busy(void *opaque)
{
	__atomic_add_fetch((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
	return true;
}

static bool waiting(void *opaque)
{
	(void)opaque;
	return false;
}

static uint64_t resident_pages(const struct guest_mem *mem)
{
	static unsigned char vec[MEM / FERRY_PAGE_SIZE];
	uint64_t n = 0;

	assert_int_equal(mincore(mem->regions[0].host, MEM, vec), 0);
	for (size_t i = 0; i < sizeof(vec); i++)
		n += vec[i] & 1;
	return n;
}

static void test_yields_while_receivers_work(void **unused)
{
	struct guest_mem mem;
	struct prefault *p;
	uint64_t looks = 0;
	double share;

	(void)unused;
	assert_int_equal(mem_create(&mem, MEM, MEM_ANON), 0);
	assert_int_equal(prefault_start(&mem, (struct prefault_yield){ busy, &looks, NULL }, &p),
			 0);
	for (int i = 0; i < 100 && __atomic_load_n(&looks, __ATOMIC_RELAXED) < 20; i++)
		time_sleep_ns(10 * NS_PER_MS); /* it looked, and waited, a few times */
	assert_int_equal(prefault_stop(p, &share), 0);
	assert_true(share == 0);
	assert_int_equal(resident_pages(&mem), 0);
	mem_destroy(&mem);
}

static void test_faults_in_while_receivers_wait(void **unused)
{
	struct guest_mem mem;
	struct prefault *p;
	double share;

	(void)unused;
	assert_int_equal(mem_create(&mem, MEM, MEM_ANON), 0);
	memset(mem.regions[0].host + 4096, 0xab, 4096); /* a page the stream wrote */
	assert_int_equal(prefault_start(&mem, (struct prefault_yield){ waiting, NULL, NULL }, &p),
			 0);
	for (int i = 0; i < 1000 && prefault_progress(p) < 1; i++)
		time_sleep_ns(10 * NS_PER_MS);
	assert_int_equal(prefault_stop(p, &share), 0);
	assert_true(share == 1);
	assert_int_equal(resident_pages(&mem), MEM / FERRY_PAGE_SIZE);
	assert_int_equal(mem.regions[0].host[4096 + 100], 0xab);
	mem_destroy(&mem);
}

static void note_short(void *opaque)
{
	__atomic_store_n((bool *)opaque, true, __ATOMIC_RELEASE);
}

/* The host's reserve set to all but 128 MiB of what it has now: the
 * prefault of 1 GiB stops short of it, says why, and calls back. */
static void test_stops_where_the_host_runs_short(void **unused)
{
	const uint64_t size = 1ull << 30;
	struct guest_mem mem;
	struct prefault *p;
	bool called = false;

	(void)unused;
	assert_int_equal(mem_create(&mem, size, MEM_ANON), 0);
	mem_set_host_reserve(mem_host_available() - (128ull << 20));
	assert_int_equal(
		prefault_start(&mem, (struct prefault_yield){ waiting, &called, note_short }, &p),
		0);
	for (int i = 0; i < 6000 && !__atomic_load_n(&called, __ATOMIC_ACQUIRE); i++)
		time_sleep_ns(10 * NS_PER_MS);
	assert_true(called);
	assert_int_equal(prefault_failed(p), -ENOMEM);
	assert_non_null(strstr(err_msg(), "the host ran short of memory"));
	assert_int_equal(prefault_stop(p, NULL), -ENOMEM);
	mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yields_while_receivers_work),
		cmocka_unit_test(test_faults_in_while_receivers_wait),
		cmocka_unit_test(test_stops_where_the_host_runs_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
