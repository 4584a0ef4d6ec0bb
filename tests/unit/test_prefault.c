/* The background prefault (vm/prefault.h) yields to the receivers: while
 * they are busy it faults nothing in; while they wait it faults all of
 * guest memory in, keeping what was written there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

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

	(void)unused;
	assert_int_equal(mem_create(&mem, MEM, MEM_ANON), 0);
	assert_int_equal(prefault_start(&mem, (struct prefault_yield){ busy, &looks }, &p), 0);
	for (int i = 0; i < 100 && __atomic_load_n(&looks, __ATOMIC_RELAXED) < 20; i++)
		time_sleep_ns(10 * NS_PER_MS); /* it looked, and waited, a few times */
	assert_true(prefault_stop(p) == 0);
	assert_int_equal(resident_pages(&mem), 0);
	mem_destroy(&mem);
}

static void test_faults_in_while_receivers_wait(void **unused)
{
	struct guest_mem mem;
	struct prefault *p;
	(void)unused;
	assert_int_equal(mem_create(&mem, MEM, MEM_ANON), 0);
	memset(mem.regions[0].host + 4096, 0xab, 4096); /* a page the stream wrote */
	assert_int_equal(prefault_start(&mem, (struct prefault_yield){ waiting, NULL }, &p), 0);
	for (int i = 0; i < 1000 && prefault_progress(p) < 1; i++)
		time_sleep_ns(10 * NS_PER_MS);
	assert_true(prefault_stop(p) == 1);
	assert_int_equal(resident_pages(&mem), MEM / FERRY_PAGE_SIZE);
	assert_int_equal(mem.regions[0].host[4096 + 100], 0xab);
	mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yields_while_receivers_work),
		cmocka_unit_test(test_faults_in_while_receivers_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
