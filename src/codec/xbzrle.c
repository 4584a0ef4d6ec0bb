#include "codec/xbzrle.h"

#include <errno.h>
#include <string.h>

#include "util/error.h"

/* Unchanged gaps this short are cheaper sent as changed bytes than as a new
 * run (a run costs at least two header bytes). */
#define MERGE_GAP 2

static size_t uleb_put(uint8_t *out, uint32_t v)
{
	size_t n = 0;

	do {
		out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* Read one ULEB128 of at most two bytes (page offsets fit in 14 bits).
 * Returns bytes consumed, or 0 if truncated, overlong or too large. */
static size_t uleb_get(const uint8_t *in, size_t len, uint32_t *v)
{
	if (len >= 1 && !(in[0] & 0x80)) {
		*v = in[0];
		return 1;
	}
	if (len >= 2 && !(in[1] & 0x80) && in[1] != 0) {
		*v = (uint32_t)(in[0] & 0x7f) | (uint32_t)in[1] << 7;
		return 2;
	}
	return 0;
}

static uint32_t same_run(const uint8_t *a, const uint8_t *b, uint32_t i)
{
	uint32_t start = i;
	uint64_t x, y;

	while (i < FERRY_PAGE_SIZE && i % 8 && a[i] == b[i])
		i++;
	while (i + 8 <= FERRY_PAGE_SIZE) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			break;
		i += 8;
	}
	while (i < FERRY_PAGE_SIZE && a[i] == b[i])
		i++;
	return i - start;
}

/* Changed bytes from i (which differs), swallowing unchanged gaps of up to
 * MERGE_GAP bytes; one pass, since dense changes make runs short. */
static uint32_t diff_run(const uint8_t *a, const uint8_t *b, uint32_t i)
{
	uint32_t start = i, same = 0;

	for (; i < FERRY_PAGE_SIZE; i++) {
		if (a[i] != b[i])
			same = 0;
		else if (++same > MERGE_GAP)
			return i + 1 - same - start;
	}
	return FERRY_PAGE_SIZE - same - start;
}

bool xbzrle_put_run(uint8_t *out, size_t max, size_t *n, uint32_t skip, const uint8_t *from,
		    uint32_t len)
{
	uint8_t head[6];
	size_t h = uleb_put(head, skip);

	h += uleb_put(head + h, len);
	if (*n + h + len > max)
		return false;
	memcpy(out + *n, head, h);
	memcpy(out + *n + h, from, len);
	*n += h + len;
	return true;
}

int xbzrle_encode(const uint8_t *old, const uint8_t *new, uint8_t *out, size_t max)
{
	size_t n = 0;
	uint32_t i = 0;

	for (;;) {
		uint32_t skip = same_run(old, new, i), len;

		i += skip;
		if (i == FERRY_PAGE_SIZE)
			return (int)n;
		len = diff_run(old, new, i);
		if (!xbzrle_put_run(out, max, &n, skip, new + i, len))
			return -1;
		i += len;
	}
}

int xbzrle_check(const uint8_t *delta, size_t len)
{
	uint32_t at = 0, skip, run;
	size_t p = 0, n;

	while (p < len) {
		if (!(n = uleb_get(delta + p, len - p, &skip)))
			return err_set(-EINVAL, "XBZRLE delta: bad skip length at byte %zu", p);
		p += n;
		if (!(n = uleb_get(delta + p, len - p, &run)))
			return err_set(-EINVAL, "XBZRLE delta: bad run length at byte %zu", p);
		p += n;
		if (run == 0 || (skip == 0 && at != 0))
			return err_set(-EINVAL, "XBZRLE delta: empty run or gap at byte %zu", p);
		if ((uint64_t)at + skip + run > FERRY_PAGE_SIZE)
			return err_set(-EINVAL, "XBZRLE delta runs past the end of the page");
		if (run > len - p)
			return err_set(-EINVAL, "XBZRLE delta is truncated");
		at += skip + run;
		p += run;
	}
	return 0;
}

void xbzrle_apply(const uint8_t *delta, size_t len, uint8_t *page)
{
	uint32_t at = 0, skip = 0, run = 0;
	size_t p = 0;

	while (p < len) {
		p += uleb_get(delta + p, len - p, &skip);
		p += uleb_get(delta + p, len - p, &run);
		at += skip;
		memcpy(page + at, delta + p, run);
		at += run;
		p += run;
	}
}
