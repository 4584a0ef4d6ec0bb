/* ferry's own copy rate (migration/plan/copyrate.h): pages go through a
 * real loopback TCP connection and a rate comes back; nothing to send gives
 * 0, as an unknown rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "migration/plan/copyrate.h"
#include "util/page.h"

static void test_rate(void **unused)
{
	const size_t n = 300; /* not a whole number of batches */
	uint8_t *pages = malloc(n * FERRY_PAGE_SIZE);

	(void)unused;
	assert_non_null(pages);
	memset(pages, 0x5a, n * FERRY_PAGE_SIZE);
	/* Any host moves more than a megabyte a second; the bound only says a
	 * rate came back. */
	assert_true(copy_rate_bps(pages, n, 16ull << 20, 1) > 1e6);
	assert_true(copy_rate_bps(pages, n, 16ull << 20, 3) > 1e6); /* three lanes */
	assert_true(copy_rate_bps(pages, 0, 16ull << 20, 1) == 0);
	free(pages);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
