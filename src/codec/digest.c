#include "codec/digest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/xbzrle.h"
#include "util/hash.h"

struct digests {
	uint64_t npages;
	uint64_t zero_line; /* the hash of a line of zeros */
	uint8_t *known;	    /* per page: noted at least once */
	uint64_t (*lines)[DIGEST_LINES];
};

uint64_t digests_bytes(uint64_t npages)
{
	return npages * (sizeof(uint64_t) * DIGEST_LINES + 1);
}

struct digests *digests_create(uint64_t npages)
{
	static const uint8_t zeros[DIGEST_LINE];
	struct digests *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->npages = npages;
	d->zero_line = hash64(zeros, DIGEST_LINE);
	d->known = calloc(npages, 1);
	d->lines = calloc(npages, sizeof(*d->lines));
	if (!d->known || !d->lines) {
		digests_destroy(d);
		return NULL;
	}
	return d;
}

void digests_destroy(struct digests *d)
{
	if (!d)
		return;
	free(d->known);
	free(d->lines);
	free(d);
}

static void digest(const struct digests *d, const uint8_t *page, uint64_t *out)
{
	for (unsigned i = 0; i < DIGEST_LINES; i++)
		out[i] = page ? hash64(page + i * DIGEST_LINE, DIGEST_LINE) : d->zero_line;
}

void digests_note(struct digests *d, uint64_t gfn, const uint8_t *page)
{
	if (gfn >= d->npages)
		return;
	digest(d, page, d->lines[gfn]);
	d->known[gfn] = 1;
}

/* The delta that rewrites the changed lines of page. Neighbouring changed
 * lines make one run: a later run's skip is never 0 (the canonical form
 * xbzrle_check asks for). Its length, or -1 past max. */
static int encode_lines(const bool *changed, const uint8_t *page, uint8_t *out, size_t max)
{
	uint32_t end = 0; /* where the last run ended */
	size_t n = 0;

	for (unsigned i = 0; i < DIGEST_LINES;) {
		unsigned j = i;

		if (!changed[i]) {
			i++;
			continue;
		}
		while (j < DIGEST_LINES && changed[j])
			j++;
		if (!xbzrle_put_run(out, max, &n, i * DIGEST_LINE - end, page + i * DIGEST_LINE,
				    (j - i) * DIGEST_LINE))
			return -1;
		end = j * DIGEST_LINE;
		i = j;
	}
	return (int)n;
}

int digests_delta(struct digests *d, uint64_t gfn, const uint8_t *page, uint8_t *out, size_t max)
{
	uint64_t now[DIGEST_LINES];
	bool changed[DIGEST_LINES], known;

	if (gfn >= d->npages)
		return -1;
	known = d->known[gfn];
	digest(d, page, now);
	for (unsigned i = 0; i < DIGEST_LINES; i++)
		changed[i] = now[i] != d->lines[gfn][i];
	memcpy(d->lines[gfn], now, sizeof(now));
	d->known[gfn] = 1;
	return known ? encode_lines(changed, page, out, max) : -1;
}

int lines_delta(const uint8_t *old, const uint8_t *now, uint8_t *out, size_t max)
{
	bool changed[DIGEST_LINES];

	for (unsigned i = 0; i < DIGEST_LINES; i++)
		changed[i] = memcmp(old + i * DIGEST_LINE, now + i * DIGEST_LINE, DIGEST_LINE) != 0;
	return encode_lines(changed, now, out, max);
}
