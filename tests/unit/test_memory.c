/* Guest memory's kept place (mem_reserve): nothing is mapped there until
 * it is filled, with new memory or memory handed over; a place something
 * else took is refused (-EEXIST) and that mapping is left as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/memory.h"

#define SIZE (8ull << 20)

/* Whether any page of [p, p + len) is mapped: msync fails with ENOMEM on
 * an unmapped one. */
static bool all_unmapped(uint8_t *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 4096)
		if (msync(p + off, 4096, MS_ASYNC) == 0 || errno != ENOMEM)
			return false;
	return true;
}

static void test_fill(void **unused)
{
	struct guest_mem m;
	uint8_t *p;

	(void)unused;
	assert_int_equal(mem_reserve(&m, SIZE), 0);
	p = m.regions[0].host;
	assert_true(m.reserved);
	assert_int_equal((uintptr_t)p % MEM_HUGE_PAGE, 0);
	assert_true(all_unmapped(p, SIZE));
	assert_int_equal(mem_fill(&m, MEM_ANON), 0);
	assert_false(m.reserved);
	memset(p, 0x5a, SIZE);
	assert_int_equal(p[SIZE - 1], 0x5a);
	assert_int_equal(mem_fill(&m, MEM_ANON), -EINVAL); /* mapped already */
	mem_destroy(&m);
	assert_true(all_unmapped(p, SIZE));
}

static void test_taken(void **unused)
{
	struct guest_mem m;
	uint8_t *p, *other;

	(void)unused;
	assert_int_equal(mem_reserve(&m, SIZE), 0);
	p = m.regions[0].host;
	other = mmap(p + SIZE / 2, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	assert_ptr_equal(other, p + SIZE / 2);
	other[0] = 7;
	assert_int_equal(mem_fill(&m, MEM_MEMFD), -EEXIST);
	assert_int_equal(m.memfd, -1); /* the file it made is gone */
	assert_true(m.reserved);
	assert_int_equal(other[0], 7);
	assert_true(all_unmapped(p, SIZE / 2));
	munmap(other, 4096);
	mem_destroy(&m);
}

/* The memory one guest_mem shares mapped into another's kept place: the
 * same pages. */
static void test_adopt(void **unused)
{
	struct guest_mem from, to;
	int fd;

	(void)unused;
	assert_int_equal(mem_create(&from, SIZE, MEM_MEMFD), 0);
	memset(from.regions[0].host, 0xc3, SIZE);
	assert_int_equal(mem_share(&from, &fd), 0);
	assert_int_equal(mem_reserve(&to, SIZE), 0);
	fd = dup(fd);
	assert_int_equal(mem_adopt(&to, fd, MEM_MEMFD), 0);
	assert_int_equal(to.memfd, fd);
	assert_int_equal(to.regions[0].host[SIZE - 1], 0xc3);
	to.regions[0].host[0] = 0x11;
	assert_int_equal(from.regions[0].host[0], 0x11);
	mem_destroy(&to);
	mem_destroy(&from);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_taken),
		cmocka_unit_test(test_adopt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
