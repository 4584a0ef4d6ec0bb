/* XBZRLE: a re-sent page as the bytes that changed since its previous copy.
 *
 * The delta is a sequence of runs, each: skip (ULEB128, unchanged bytes),
 * len (ULEB128, changed bytes), then those len bytes. Bytes after the last
 * run are unchanged. Canonical form only: len >= 1, skip >= 1 except in the
 * first run, no overlong ULEB128, runs end within the page. An empty delta
 * means "unchanged". docs/protocol.md describes the same format. */
#ifndef FERRY_CODEC_XBZRLE_H
#define FERRY_CODEC_XBZRLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/page.h"

/* Encode new against old into out (at most max bytes). Returns the delta's
 * length, or -1 if it would not fit in max bytes (send the page raw). */
int xbzrle_encode(const uint8_t *old, const uint8_t *new, uint8_t *out, size_t max);

/* Append one run to the delta of *n bytes at out (at most max): skip
 * unchanged bytes, then the len changed bytes at from. false if it does not
 * fit. For encoders that know the changed bytes another way. */
bool xbzrle_put_run(uint8_t *out, size_t max, size_t *n, uint32_t skip, const uint8_t *from,
		    uint32_t len);

/* Check that delta is well formed for a page. Returns 0 or -EINVAL with
 * err_msg() saying what is wrong. */
int xbzrle_check(const uint8_t *delta, size_t len);

/* Apply a delta that xbzrle_check accepted to page (the old copy). */
void xbzrle_apply(const uint8_t *delta, size_t len, uint8_t *page);

#endif
