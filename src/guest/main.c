/* Guest entry point and workloads: idle, dirty, touch. Each vCPU works on its
 * own share of the working set, so no two vCPUs write the same page and the
 * self-check needs no locking. */
#include "guest/data.h"
#include "guest/runtime.h"
#include "guest/selfcheck.h"

#define IDLE_SLEEP_US  100000
#define MIN_SLEEP_US   1000   /* a sleep call costs an exit: never sleep for less */
#define MAX_BACKLOG_US 100000 /* after a pause, do not try to catch up more than this */

static void serve_requests(struct wl_ctx *ctx)
{
	struct ferry_control *c = rt_control();
	uint64_t req = c->sweep_req;

	if (req != ctx->st->sweep_done) {
		ctx->st->sweep_errors = selfcheck_sweep(ctx);
		ctx->st->sweep_pages = ctx->count;
		__asm__ volatile("" ::: "memory");
		ctx->st->sweep_done = req;
		rt_beat_restart(ctx->cpu); /* a sweep is long on purpose */
	}
}

static void fill_share(struct wl_ctx *ctx)
{
	for (uint64_t i = 0; i < ctx->count; i++) {
		selfcheck_fill(ctx, ctx->first + i);
		ctx->st->pages_written++;
	}
	ctx->st->passes++;
	ctx->st->filled = 1;
}

static __attribute__((noreturn)) void idle_forever(struct wl_ctx *ctx)
{
	for (;;) {
		serve_requests(ctx);
		rt_beat(ctx->cpu);
		rt_sleep_us(ctx->cpu, IDLE_SLEEP_US);
	}
}

/* A vCPU that computes without writing memory (but its status slot): each
 * unit of work is 65536 rounds of xorshift, about 100 us. */
static __attribute__((noreturn)) void compute_forever(struct wl_ctx *ctx)
{
	uint64_t x = ctx->cpu + 1;

	for (;;) {
		for (int i = 0; i < 65536; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		if (!x)
			rt_panic(ctx->cpu, 3); /* never: keeps the loop from being optimised out */
		ctx->st->work++;
		rt_beat(ctx->cpu);
		serve_requests(ctx);
	}
}

static uint64_t next_page(struct wl_ctx *ctx)
{
	const struct ferry_workload_args *a = ctx->args;
	uint64_t r = data_mix(ctx->rng++);

	switch (a->pattern) {
	case FERRY_PAT_SEQUENTIAL:
		if (++ctx->cursor >= ctx->count) {
			ctx->cursor = 0;
			ctx->st->passes++;
		}
		return ctx->first + ctx->cursor;
	case FERRY_PAT_HOTSET: {
		uint64_t hot = ctx->count * a->hot_pct / 100;

		if (hot && r % 100 < a->hot_hits_pct)
			return ctx->first + (r >> 8) % hot;
		return ctx->first + (r >> 8) % ctx->count;
	}
	default:
		return ctx->first + (r >> 8) % ctx->count;
	}
}

/* Keep to the rate by writing in bursts and sleeping in between: a sleep
 * costs a VM exit, so bursts are at least MIN_SLEEP_US apart. */
static void pace(struct wl_ctx *ctx, uint64_t *start, uint64_t done, uint64_t tsc_per_page)
{
	uint64_t tsc_us = rt_tsc_per_us();
	uint64_t due = *start + done * tsc_per_page, now = rt_rdtsc();

	if (now > due + MAX_BACKLOG_US * tsc_us)
		*start = now - done * tsc_per_page;
	else if (due > now + MIN_SLEEP_US * tsc_us)
		rt_sleep_us(ctx->cpu, (due - now) / tsc_us);
}

static __attribute__((noreturn)) void dirty_forever(struct wl_ctx *ctx)
{
	const struct ferry_workload_args *a = ctx->args;
	uint32_t dirtiers = a->dirtiers && a->dirtiers < ctx->ncpu ? a->dirtiers : ctx->ncpu;
	uint64_t per_cpu = a->rate_pps / dirtiers, tsc_per_page = 0;
	uint64_t start = rt_rdtsc(), done = 0;

	if (ctx->cpu >= dirtiers)
		compute_forever(ctx);
	if (a->rate_pps)
		tsc_per_page = rt_params()->tsc_khz * 1000 / (per_cpu ? per_cpu : 1);
	if (!ctx->count)
		idle_forever(ctx);
	for (;;) {
		/* A beat per page: a page that is slow to come (post-copy) is a
		 * stall on its own, not one among 64. */
		for (int i = 0; i < 64; i++) {
			selfcheck_write(ctx, next_page(ctx));
			ctx->st->pages_written++;
			rt_beat(ctx->cpu);
		}
		done += 64;
		if (a->pattern == FERRY_PAT_RANDOM || a->pattern == FERRY_PAT_HOTSET)
			ctx->st->passes = ctx->st->pages_written / ctx->count;
		serve_requests(ctx);
		if (tsc_per_page)
			pace(ctx, &start, done, tsc_per_page);
	}
}

/* vCPU 0 writes each page in the control page's list once per request. */
static __attribute__((noreturn)) void touch_forever(struct wl_ctx *ctx)
{
	struct ferry_control *c = rt_control();

	for (;;) {
		uint64_t req = c->touch_req;

		if (ctx->cpu == 0 && req != ctx->st->touch_done) {
			uint64_t n = c->touch_count;

			for (uint64_t i = 0; i < n && i < FERRY_TOUCH_MAX; i++)
				if (c->touch_list[i] < ctx->args->wss_pages)
					selfcheck_write(ctx, c->touch_list[i]);
			ctx->st->pages_written += n;
			ctx->st->touch_done = req;
		}
		rt_sleep_us(ctx->cpu, IDLE_SLEEP_US);
	}
}

void guest_main(uint32_t cpu);

void guest_main(uint32_t cpu)
{
	const struct ferry_params *p = rt_params();
	struct wl_ctx ctx;

	if (p->magic != FERRY_PARAMS_MAGIC || p->version != FERRY_PARAMS_VERSION)
		rt_panic(cpu, 1);
	selfcheck_init(&ctx, cpu, p->vcpus);
	if (cpu == 0)
		rt_puts("ferry guest: started\n");
	switch (p->wl.kind) {
	case FERRY_WL_IDLE:
		fill_share(&ctx);
		idle_forever(&ctx);
	case FERRY_WL_DIRTY:
		fill_share(&ctx);
		dirty_forever(&ctx);
	case FERRY_WL_TOUCH:
		ctx.st->filled = 1;
		touch_forever(&ctx);
	default:
		rt_panic(cpu, 2);
	}
}
