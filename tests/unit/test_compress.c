/* Compression backends: names parse, batches round-trip, text shrinks and
 * random data does not, and broken frames are clean errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec/compress.h"
#include "guest/abi.h"
#include "guest/data.h"

#define BATCH (128 * FERRY_PAGE_SIZE)

static uint8_t *batch_of(uint32_t kind)
{
	uint8_t *b = malloc(BATCH);

	for (uint64_t i = 0; i < 128; i++)
		data_fill(b + i * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE, kind, data_key(i, 1, 1));
	return b;
}

static void test_parse(void **unused)
{
	enum compress_kind k;
	int level;

	(void)unused;
	assert_int_equal(compress_parse("lz4", &k, &level), 0);
	assert_int_equal(k, COMPRESS_LZ4);
	assert_int_equal(compress_parse("zstd", &k, &level), 0);
	assert_true(k == COMPRESS_ZSTD && level == 1);
	assert_int_equal(compress_parse("zstd:7", &k, &level), 0);
	assert_int_equal(level, 7);
	assert_int_equal(compress_parse("none", &k, &level), 0);
	assert_int_equal(k, COMPRESS_NONE);
	assert_int_equal(compress_parse("zstd:0", &k, &level), -22);
	assert_int_equal(compress_parse("zstd:20", &k, &level), -22);
	assert_int_equal(compress_parse("zstd:", &k, &level), -22);
	assert_int_equal(compress_parse("gzip", &k, &level), -22);
}

/* Round trip kind's data through backend; returns the ratio. */
static double round_trip(enum compress_kind backend, uint32_t data)
{
	struct compressor c;
	uint8_t *src = batch_of(data), *frame = malloc(compress_bound(BATCH)), *out = malloc(BATCH);
	long n;
	double ratio;

	assert_int_equal(compressor_init(&c, backend, 1), 0);
	n = c.backend->compress(&c, src, BATCH, frame, compress_bound(BATCH));
	assert_true(n > 0);
	assert_int_equal(c.backend->decompress(&c, frame, (size_t)n, out, BATCH), 0);
	assert_memory_equal(out, src, BATCH);
	/* A frame too small for the batch does not fit: send it raw. */
	if (data == FERRY_DATA_RANDOM)
		assert_int_equal(c.backend->compress(&c, src, BATCH, frame, BATCH / 2), -ENOSPC);
	ratio = (double)BATCH / (double)n;
	compressor_free(&c);
	free(src);
	free(frame);
	free(out);
	return ratio;
}

static void test_round_trips(void **unused)
{
	double zt = round_trip(COMPRESS_ZSTD, FERRY_DATA_TEXT),
	       lt = round_trip(COMPRESS_LZ4, FERRY_DATA_TEXT);
	double zr = round_trip(COMPRESS_ZSTD, FERRY_DATA_RANDOM);
	double lr = round_trip(COMPRESS_LZ4, FERRY_DATA_RANDOM);

	(void)unused;
	print_message("text: zstd-1 %.2f, lz4 %.2f; random: zstd %.3f, lz4 %.3f\n", zt, lt, zr, lr);
	assert_true(zt > 2.5 && lt > 1.5);
	assert_true(zr < 1.01 && lr < 1.01);
}

static void test_broken_frames(void **unused)
{
	enum compress_kind kinds[] = { COMPRESS_ZSTD, COMPRESS_LZ4 };
	uint8_t *src = batch_of(FERRY_DATA_TEXT), *frame = malloc(compress_bound(BATCH));
	uint8_t *out = malloc(BATCH);

	(void)unused;
	for (int k = 0; k < 2; k++) {
		struct compressor c;
		long n;

		assert_int_equal(compressor_init(&c, kinds[k], 1), 0);
		n = c.backend->compress(&c, src, BATCH, frame, compress_bound(BATCH));
		assert_true(n > 16);
		assert_int_equal(c.backend->decompress(&c, frame, (size_t)n / 2, out, BATCH), -22);
		assert_int_equal(c.backend->decompress(&c, frame, (size_t)n, out, BATCH - 4096),
				 -22);
		memset(frame, 0xff, 16);
		assert_int_equal(c.backend->decompress(&c, frame, (size_t)n, out, BATCH), -22);
		compressor_free(&c);
	}
	free(src);
	free(frame);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_broken_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
