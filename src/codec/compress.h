/* Multi-page compression behind one interface, so that another backend (a
 * QAT, IAA or GPU offload) plugs in beside zstd and lz4. A batch of pages is
 * compressed as one independent frame: batches can travel on different
 * channels and be decoded in any order. Each channel owns one context and
 * reuses it for every batch (no per-batch allocation). */
#ifndef FERRY_CODEC_COMPRESS_H
#define FERRY_CODEC_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* ferry's one list of codecs. The values of LZ4 and ZSTD are also their
 * numbers on the wire (stream/format.h, ZPAGES). */
enum compress_kind {
	COMPRESS_NONE,
	COMPRESS_LZ4,
	COMPRESS_ZSTD,
	COMPRESS_KINDS
};

struct compressor;

struct compress_backend {
	const char *name;
	enum compress_kind kind;
	int (*create)(struct compressor *c);
	void (*destroy)(struct compressor *c);
	/* Compress n bytes; returns the frame's length, or -ENOSPC if it would
	 * not fit cap (the caller sends the batch raw). */
	long (*compress)(struct compressor *c, const void *src, size_t n, void *dst, size_t cap);
	/* Decompress a frame that must expand to exactly n bytes; -EINVAL with
	 * err_msg() for anything else. */
	int (*decompress)(struct compressor *c, const void *src, size_t len, void *dst, size_t n);
};

struct compressor {
	const struct compress_backend *backend;
	int level;
	void *cctx, *dctx;
};

/* "lz4", "zstd" or "zstd:LEVEL" (1-19; default 1). Returns 0, or -EINVAL
 * with err_msg(). */
int compress_parse(const char *spec, enum compress_kind *kind, int *level);
/* "none", "lz4" or "zstd". */
const char *compress_kind_name(enum compress_kind kind);
int compressor_init(struct compressor *c, enum compress_kind kind, int level);
void compressor_free(struct compressor *c);
/* The most a frame of n bytes can take. */
size_t compress_bound(size_t n);

#endif
