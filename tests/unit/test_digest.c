/* Line digests (codec/digest.h): a page the XBZRLE cache missed goes as a
 * delta of the lines that changed, which the destination applies to what
 * it holds like any XBZRLE delta. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/digest.h"
#include "codec/xbzrle.h"

static void fill(uint8_t *p, unsigned seed)
{
	for (unsigned i = 0; i < FERRY_PAGE_SIZE; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 5));
}

/* What the destination would hold after applying delta to old. */
static void applied(const uint8_t *old, const uint8_t *delta, int n, uint8_t *out)
{
	memcpy(out, old, FERRY_PAGE_SIZE);
	assert_int_equal(xbzrle_check(delta, (size_t)n), 0);
	xbzrle_apply(delta, (size_t)n, out);
}

static void test_changed_lines(void **unused)
{
	struct digests *d = digests_create(4);
	uint8_t old[FERRY_PAGE_SIZE], now[FERRY_PAGE_SIZE], out[FERRY_PAGE_SIZE],
		got[FERRY_PAGE_SIZE];
	int n;

	(void)unused;
	assert_non_null(d);
	fill(old, 1);
	digests_note(d, 2, old);
	memcpy(now, old, sizeof(now));
	now[5] ^= 1;		       /* line 0 */
	now[DIGEST_LINE * 3 + 9] ^= 1; /* line 3 */
	now[DIGEST_LINE * 4] ^= 1;     /* line 4: joins line 3's run */
	now[FERRY_PAGE_SIZE - 1] ^= 1; /* the last line */
	n = digests_delta(d, 2, now, out, FERRY_PAGE_SIZE - 1);
	assert_true(n > 0 && n < 4 * DIGEST_LINE + 12);
	applied(old, out, n, got);
	assert_memory_equal(got, now, FERRY_PAGE_SIZE);
	/* Noted as now: unchanged since, the delta is empty. */
	assert_int_equal(digests_delta(d, 2, now, out, FERRY_PAGE_SIZE - 1), 0);
	digests_destroy(d);
}

/* Never noted, out of range, or not smaller than allowed: the page goes
 * raw, and what it holds now is noted anyway. */
static void test_raw(void **unused)
{
	struct digests *d = digests_create(4);
	uint8_t a[FERRY_PAGE_SIZE], b[FERRY_PAGE_SIZE], out[FERRY_PAGE_SIZE], got[FERRY_PAGE_SIZE];
	int n;

	(void)unused;
	fill(a, 1);
	fill(b, 2);
	assert_int_equal(digests_delta(d, 1, a, out, FERRY_PAGE_SIZE - 1), -1);
	assert_int_equal(digests_delta(d, 1, a, out, FERRY_PAGE_SIZE - 1), 0);
	assert_int_equal(digests_delta(d, 4, a, out, FERRY_PAGE_SIZE - 1), -1);
	assert_int_equal(digests_delta(d, 1, b, out, FERRY_PAGE_SIZE - 1), -1); /* all changed */
	b[100] ^= 0xff;
	n = digests_delta(d, 1, b, out, FERRY_PAGE_SIZE - 1);
	fill(a, 2);
	applied(a, out, n, got);
	assert_memory_equal(got, b, FERRY_PAGE_SIZE);
	digests_destroy(d);
}

/* A page sent as zero: a later delta applies to zeros. */
static void test_zero(void **unused)
{
	struct digests *d = digests_create(1);
	uint8_t zero[FERRY_PAGE_SIZE] = { 0 }, now[FERRY_PAGE_SIZE] = { 0 }, out[FERRY_PAGE_SIZE],
		got[FERRY_PAGE_SIZE];
	int n;

	(void)unused;
	digests_note(d, 0, NULL);
	now[2 * DIGEST_LINE + 1] = 7;
	n = digests_delta(d, 0, now, out, FERRY_PAGE_SIZE - 1);
	assert_true(n > 0 && n <= DIGEST_LINE + 4);
	applied(zero, out, n, got);
	assert_memory_equal(got, now, FERRY_PAGE_SIZE);
	digests_destroy(d);
}

/* From two copies at hand (ferry dirtyrate's estimate): the same delta
 * the digests give. */
static void test_from_copies(void **unused)
{
	struct digests *d = digests_create(1);
	uint8_t old[FERRY_PAGE_SIZE], now[FERRY_PAGE_SIZE], a[FERRY_PAGE_SIZE], b[FERRY_PAGE_SIZE];
	int n;

	(void)unused;
	fill(old, 3);
	memcpy(now, old, sizeof(now));
	now[700] ^= 1;
	now[701 + DIGEST_LINE] ^= 1;
	digests_note(d, 0, old);
	n = digests_delta(d, 0, now, a, FERRY_PAGE_SIZE - 1);
	assert_int_equal(lines_delta(old, now, b, FERRY_PAGE_SIZE - 1), n);
	assert_memory_equal(a, b, (size_t)n);
	assert_int_equal(lines_delta(old, old, b, FERRY_PAGE_SIZE - 1), 0);
	digests_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changed_lines),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_zero),
		cmocka_unit_test(test_from_copies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
