#include "codec/compress.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "util/error.h"

static int zstd_create(struct compressor *c)
{
	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	return c->cctx && c->dctx ? 0 : err_set(-ENOMEM, "out of memory for zstd");
}

static void zstd_destroy(struct compressor *c)
{
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
}

static long zstd_compress(struct compressor *c, const void *src, size_t n, void *dst, size_t cap)
{
	size_t r = ZSTD_compressCCtx(c->cctx, dst, cap, src, n, c->level);

	return ZSTD_isError(r) ? -ENOSPC : (long)r;
}

static int zstd_decompress(struct compressor *c, const void *src, size_t len, void *dst, size_t n)
{
	unsigned long long size = ZSTD_getFrameContentSize(src, len);
	size_t r;

	if (size != n)
		return err_set(-EINVAL, "zstd frame does not hold %zu bytes", n);
	r = ZSTD_decompressDCtx(c->dctx, dst, n, src, len);
	if (ZSTD_isError(r) || r != n)
		return err_set(-EINVAL, "zstd frame is corrupt: %s",
			       ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short");
	return 0;
}

static int lz4_create(struct compressor *c)
{
	c->cctx = malloc((size_t)LZ4_sizeofState());
	return c->cctx ? 0 : err_set(-ENOMEM, "out of memory for lz4");
}

static void lz4_destroy(struct compressor *c)
{
	free(c->cctx);
}

static long lz4_compress(struct compressor *c, const void *src, size_t n, void *dst, size_t cap)
{
	int r = LZ4_compress_fast_extState(c->cctx, src, dst, (int)n, (int)cap, 1);

	return r > 0 ? r : -ENOSPC;
}

/* LZ4's safe decoder never writes past n, and reports malformed input. */
static int lz4_decompress(struct compressor *c, const void *src, size_t len, void *dst, size_t n)
{
	int r = LZ4_decompress_safe(src, dst, (int)len, (int)n);

	(void)c;
	if (r != (int)n)
		return err_set(-EINVAL, "lz4 frame is corrupt or does not hold %zu bytes", n);
	return 0;
}

static const struct compress_backend backends[] = {
	{ "lz4", COMPRESS_LZ4, lz4_create, lz4_destroy, lz4_compress, lz4_decompress },
	{ "zstd", COMPRESS_ZSTD, zstd_create, zstd_destroy, zstd_compress, zstd_decompress },
};

int compress_parse(const char *spec, enum compress_kind *kind, int *level)
{
	char *end;

	*level = 1;
	if (!strcmp(spec, "none")) {
		*kind = COMPRESS_NONE;
		return 0;
	}
	if (!strcmp(spec, "lz4")) {
		*kind = COMPRESS_LZ4;
		return 0;
	}
	if (!strncmp(spec, "zstd", 4) && (!spec[4] || spec[4] == ':')) {
		*kind = COMPRESS_ZSTD;
		if (!spec[4])
			return 0;
		*level = (int)strtol(spec + 5, &end, 10);
		if (end != spec + 5 && !*end && *level >= 1 && *level <= 19)
			return 0;
	}
	return err_set(-EINVAL,
		       "compression '%s' is unknown: use none, lz4, zstd or zstd:LEVEL (1-19)",
		       spec);
}

const char *compress_kind_name(enum compress_kind kind)
{
	static const char *const names[] = { "none", "lz4", "zstd" };

	return kind < COMPRESS_KINDS ? names[kind] : "unknown";
}

int compressor_init(struct compressor *c, enum compress_kind kind, int level)
{
	*c = (struct compressor){ .level = level };
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i].kind == kind) {
			c->backend = &backends[i];
			return c->backend->create(c);
		}
	return err_set(-EINVAL, "no compression backend for kind %d", (int)kind);
}

void compressor_free(struct compressor *c)
{
	if (c->backend)
		c->backend->destroy(c);
	*c = (struct compressor){ 0 };
}

size_t compress_bound(size_t n)
{
	size_t z = ZSTD_compressBound(n), l = (size_t)LZ4_compressBound((int)n);

	return z > l ? z : l;
}
