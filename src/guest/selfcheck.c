#include "guest/selfcheck.h"

#include "guest/data.h"
#include "guest/runtime.h"

#define DATA_OFF   FERRY_PAGE_HEADER_SIZE
#define DATA_LEN   (FERRY_PAGE_SIZE - FERRY_PAGE_HEADER_SIZE)
#define VALUE_MASK ((1ull << 52) - 1)

void selfcheck_init(struct wl_ctx *ctx, uint32_t cpu, uint32_t ncpu)
{
	const struct ferry_params *p = rt_params();
	uint64_t wss = p->wl.wss_pages;

	ctx->cpu = cpu;
	ctx->ncpu = ncpu;
	ctx->args = &p->wl;
	ctx->st = rt_status(cpu);
	ctx->table = (uint32_t *)FERRY_HEAP_GPA;
	ctx->ws = (uint8_t *)ferry_ws_gpa(wss);
	ctx->first = wss * cpu / ncpu;
	ctx->count = wss * (cpu + 1) / ncpu - ctx->first;
	ctx->rng = data_key(cpu, 0, p->wl.seed) | 1;
	ctx->cursor = 0;
}

static int checking(const struct wl_ctx *ctx)
{
	return ctx->args->check && ctx->args->data != FERRY_DATA_ZERO;
}

static struct ferry_page_header *header(struct wl_ctx *ctx, uint64_t idx)
{
	return (struct ferry_page_header *)(ctx->ws + idx * FERRY_PAGE_SIZE);
}

static uint64_t key(const struct wl_ctx *ctx, uint64_t idx, uint64_t gen)
{
	return data_key(idx, gen, ctx->args->seed);
}

void selfcheck_fill(struct wl_ctx *ctx, uint64_t idx)
{
	uint8_t *page = ctx->ws + idx * FERRY_PAGE_SIZE;
	struct ferry_page_header *h = header(ctx, idx);

	if (!checking(ctx)) {
		data_fill(page, FERRY_PAGE_SIZE, ctx->args->data, key(ctx, idx, 1));
		return;
	}
	data_fill(page + DATA_OFF, DATA_LEN, ctx->args->data, key(ctx, idx, 1));
	h->tag = ferry_page_tag(idx);
	h->last_write = 0;
	h->gen = 1;
	ctx->table[idx] = 1;
}

/* A full-page write (last_write == 0) is checked on its first 64 bytes, or
 * on all of it when full is set; a small write on its own bytes. */
static int content_ok(struct wl_ctx *ctx, uint64_t idx, uint32_t gen, int full)
{
	uint8_t *page = ctx->ws + idx * FERRY_PAGE_SIZE;
	uint64_t lw = header(ctx, idx)->last_write, off = lw >> 52;
	uint64_t buf[DATA_LEN / 8];
	uint64_t len = full ? DATA_LEN : 64;

	if (off == 0) {
		data_fill(buf, len, ctx->args->data, key(ctx, idx, gen));
		for (uint64_t i = 0; i < len / 8; i++)
			if (((uint64_t *)(page + DATA_OFF))[i] != buf[i])
				return 0;
		return 1;
	}
	if (ctx->args->write == FERRY_WRITE_BYTE)
		return page[off] == (lw & 0xff);
	return (*(uint64_t *)(page + off) & VALUE_MASK) == (lw & VALUE_MASK);
}

static int page_ok(struct wl_ctx *ctx, uint64_t idx, int full)
{
	struct ferry_page_header *h = header(ctx, idx);
	uint32_t gen = ctx->table[idx];

	return h->gen == gen && h->tag == ferry_page_tag(idx) && content_ok(ctx, idx, gen, full);
}

static void verify_before_write(struct wl_ctx *ctx, uint64_t idx)
{
	if (page_ok(ctx, idx, 0))
		return;
	ctx->st->verify_errors++;
	rt_report_stale(ctx->cpu, idx, ctx->table[idx], header(ctx, idx)->gen);
}

static void write_unchecked(struct wl_ctx *ctx, uint64_t idx, uint64_t k)
{
	uint8_t *page = ctx->ws + idx * FERRY_PAGE_SIZE;

	switch (ctx->args->write) {
	case FERRY_WRITE_BYTE:
		page[k % FERRY_PAGE_SIZE] = (uint8_t)(k >> 32);
		break;
	case FERRY_WRITE_WORD:
		((uint64_t *)page)[k % (FERRY_PAGE_SIZE / 8)] = k;
		break;
	default:
		data_fill(page, FERRY_PAGE_SIZE, ctx->args->data, k);
	}
}

void selfcheck_write(struct wl_ctx *ctx, uint64_t idx)
{
	uint8_t *page = ctx->ws + idx * FERRY_PAGE_SIZE;
	struct ferry_page_header *h = header(ctx, idx);
	uint32_t gen;
	uint64_t k, off;

	if (!checking(ctx)) {
		write_unchecked(ctx, idx, key(ctx, idx, ctx->st->pages_written));
		return;
	}
	verify_before_write(ctx, idx);
	gen = ctx->table[idx] + 1;
	k = key(ctx, idx, gen);
	switch (ctx->args->write) {
	case FERRY_WRITE_BYTE:
		off = DATA_OFF + k % DATA_LEN;
		page[off] = (uint8_t)(k >> 32);
		h->last_write = off << 52 | (k >> 32 & 0xff);
		break;
	case FERRY_WRITE_WORD:
		off = DATA_OFF + (k % (DATA_LEN / 8)) * 8;
		*(uint64_t *)(page + off) = k;
		h->last_write = off << 52 | (k & VALUE_MASK);
		break;
	default:
		data_fill(page + DATA_OFF, DATA_LEN, ctx->args->data, k);
		h->last_write = 0;
	}
	h->gen = gen;
	ctx->table[idx] = gen;
}

static int page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;

	for (uint64_t i = 0; i < FERRY_PAGE_SIZE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

uint64_t selfcheck_sweep(struct wl_ctx *ctx)
{
	uint64_t errors = 0;

	for (uint64_t idx = ctx->first; idx < ctx->first + ctx->count; idx++) {
		int ok;

		if (ctx->args->data == FERRY_DATA_ZERO)
			ok = page_is_zero(ctx->ws + idx * FERRY_PAGE_SIZE);
		else if (checking(ctx))
			ok = page_ok(ctx, idx, 1);
		else
			ok = 1;
		if (!ok && errors++ < 4)
			rt_report_stale(ctx->cpu, idx, ctx->table[idx], header(ctx, idx)->gen);
	}
	return errors;
}
