/* Fuzz target: the decompressors. Any input is a clean error or exactly the
 * asked size, never a write past it; and the input compressed round-trips. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/compress.h"

#define OUT (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT + 64], frame[OUT * 2];
	static struct compressor cs[2]; /* one context each, reused as a channel does */
	enum compress_kind kinds[] = { COMPRESS_LZ4, COMPRESS_ZSTD };
	size_t n = size < OUT ? size : OUT;

	for (int k = 0; k < 2; k++) {
		struct compressor *c = &cs[k];
		long len;

		if (!c->backend && compressor_init(c, kinds[k], 1) < 0)
			abort();
		memset(out + OUT, 0xa5, 64); /* a guard after the output */
		c->backend->decompress(c, data, size, out, OUT);
		for (unsigned i = OUT; i < OUT + 64; i++)
			if (out[i] != 0xa5)
				abort();
		len = n ? c->backend->compress(c, data, n, frame, compress_bound(n)) : 0;
		if (n && (len <= 0 || c->backend->decompress(c, frame, (size_t)len, out, n) < 0 ||
			  memcmp(out, data, n)))
			abort();
	}
	return 0;
}
