/* Fuzz target: the decompressors. Any input is a clean error or exactly the
 * asked size, never a write past it; the input compressed round-trips; and
 * that frame with one byte spoilt (where and how the input's first bytes
 * say) is refused or decoded within bounds. The libraries are not
 * instrumented, so random input alone seldom gets past a frame's header. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/compress.h"

#define OUT (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[OUT + 64];

/* Decompress into OUT bytes; nothing may land in the guard after them. */
static void decompress_guarded(struct compressor *c, const uint8_t *in, size_t len)
{
	memset(out + OUT, 0xa5, 64);
	c->backend->decompress(c, in, len, out, OUT);
	for (unsigned i = OUT; i < OUT + 64; i++)
		if (out[i] != 0xa5)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[OUT * 2];
	static struct compressor cs[2]; /* one context each, reused as a channel does */
	enum compress_kind kinds[] = { COMPRESS_LZ4, COMPRESS_ZSTD };
	size_t n = size < OUT ? size : OUT;

	for (int k = 0; k < 2; k++) {
		struct compressor *c = &cs[k];
		long len;

		if (!c->backend && compressor_init(c, kinds[k], 1) < 0)
			abort();
		decompress_guarded(c, data, size);
		len = n ? c->backend->compress(c, data, n, frame, compress_bound(n)) : 0;
		if (n && (len <= 0 || c->backend->decompress(c, frame, (size_t)len, out, n) < 0 ||
			  memcmp(out, data, n)))
			abort();
		if (n >= 3) {
			frame[(data[0] | data[1] << 8) % len] ^= data[2] | 1;
			decompress_guarded(c, frame, (size_t)len);
		}
	}
	return 0;
}
