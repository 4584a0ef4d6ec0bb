/* Fuzz target: the XBZRLE decoder. Whatever it accepts applies within the
 * page; and a delta of the input against a fixed page round-trips. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/xbzrle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t old[FERRY_PAGE_SIZE], page[FERRY_PAGE_SIZE + 64], copy[FERRY_PAGE_SIZE];
	static uint8_t delta[FERRY_PAGE_SIZE + 8];
	size_t n = size < FERRY_PAGE_SIZE ? size : FERRY_PAGE_SIZE;
	int len;

	for (unsigned i = 0; i < FERRY_PAGE_SIZE; i++)
		old[i] = (uint8_t)(i * 7);
	memcpy(page, old, FERRY_PAGE_SIZE);
	memset(page + FERRY_PAGE_SIZE, 0xa5, 64); /* a guard after the page */
	if (xbzrle_check(data, size) == 0)
		xbzrle_apply(data, size, page);
	for (unsigned i = FERRY_PAGE_SIZE; i < FERRY_PAGE_SIZE + 64; i++)
		if (page[i] != 0xa5)
			abort();
	/* The input as a new version of part of the page. */
	memcpy(page, old, FERRY_PAGE_SIZE);
	memcpy(page, data, n);
	len = xbzrle_encode(old, page, delta, sizeof(delta));
	if (len < 0 || xbzrle_check(delta, (size_t)len) < 0)
		abort();
	memcpy(copy, old, FERRY_PAGE_SIZE);
	xbzrle_apply(delta, (size_t)len, copy);
	if (memcmp(copy, page, FERRY_PAGE_SIZE))
		abort();
	return 0;
}
