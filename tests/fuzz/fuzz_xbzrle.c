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
	static uint8_t old[XBZRLE_PAGE], page[XBZRLE_PAGE + 64], copy[XBZRLE_PAGE];
	static uint8_t delta[XBZRLE_PAGE + 8];
	size_t n = size < XBZRLE_PAGE ? size : XBZRLE_PAGE;
	int len;

	for (unsigned i = 0; i < XBZRLE_PAGE; i++)
		old[i] = (uint8_t)(i * 7);
	memcpy(page, old, XBZRLE_PAGE);
	memset(page + XBZRLE_PAGE, 0xa5, 64); /* a guard after the page */
	if (xbzrle_check(data, size) == 0)
		xbzrle_apply(data, size, page);
	for (unsigned i = XBZRLE_PAGE; i < XBZRLE_PAGE + 64; i++)
		if (page[i] != 0xa5)
			abort();
	/* The input as a new version of part of the page. */
	memcpy(page, old, XBZRLE_PAGE);
	memcpy(page, data, n);
	len = xbzrle_encode(old, page, delta, sizeof(delta));
	if (len < 0 || xbzrle_check(delta, (size_t)len) < 0)
		abort();
	memcpy(copy, old, XBZRLE_PAGE);
	xbzrle_apply(delta, (size_t)len, copy);
	if (memcmp(copy, page, XBZRLE_PAGE))
		abort();
	return 0;
}
