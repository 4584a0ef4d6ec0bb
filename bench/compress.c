/* The compression backends on this machine: ratio and speed of compressing
 * and decompressing 128-page batches of the guest's text and random data,
 * one thread, as a data channel's worker would.
 *   bench-compress */
#include <stdio.h>
#include <stdlib.h>

#include "codec/compress.h"
#include "guest/abi.h"
#include "guest/data.h"
#include "util/time.h"

#define BATCH	(128 * FERRY_PAGE_SIZE)
#define BATCHES 256 /* 128 MiB of pages */

struct codec {
	const char *spec;
	enum compress_kind kind;
	int level;
};

static void run(const struct codec *k, const uint8_t *data, const char *what)
{
	size_t cap = compress_bound(BATCH);
	uint8_t *frame = malloc(cap), *out = malloc(BATCH);
	uint64_t packed = 0, t0, c_ns, d_ns = 0;
	struct compressor c;

	if (compressor_init(&c, k->kind, k->level) < 0)
		exit(1);
	t0 = time_now_ns();
	for (int b = 0; b < BATCHES; b++)
		packed += (uint64_t)c.backend->compress(&c, data + (size_t)b * BATCH, BATCH, frame,
							cap);
	c_ns = time_now_ns() - t0;
	for (int b = 0; b < BATCHES; b++) {
		long n = c.backend->compress(&c, data + (size_t)b * BATCH, BATCH, frame, cap);

		t0 = time_now_ns();
		if (c.backend->decompress(&c, frame, (size_t)n, out, BATCH) < 0)
			exit(1);
		d_ns += time_now_ns() - t0;
	}
	printf("%-8s %-7s ratio %5.2f:1  compress %6.0f MB/s  decompress %6.0f MB/s\n", k->spec,
	       what, (double)BATCH * BATCHES / (double)packed,
	       (double)BATCH * BATCHES / (double)c_ns * 1e3,
	       (double)BATCH * BATCHES / (double)d_ns * 1e3);
	compressor_free(&c);
	free(frame);
	free(out);
}

int main(void)
{
	static const struct codec codecs[] = {
		{ "lz4", COMPRESS_LZ4, 1 },
		{ "zstd:1", COMPRESS_ZSTD, 1 },
		{ "zstd:3", COMPRESS_ZSTD, 3 },
		{ "zstd:6", COMPRESS_ZSTD, 6 },
	};
	static const uint32_t kinds[] = { FERRY_DATA_TEXT, FERRY_DATA_RANDOM };
	uint8_t *data = malloc((size_t)BATCH * BATCHES);

	for (int d = 0; d < 2; d++) {
		for (uint64_t p = 0; p < (uint64_t)BATCHES * 128; p++)
			data_fill(data + p * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE, kinds[d],
				  data_key(p, 1, 1));
		for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
			run(&codecs[i], data, d ? "random" : "text");
	}
	free(data);
	return 0;
}
