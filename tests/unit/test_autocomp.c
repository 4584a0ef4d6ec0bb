/* --compress auto against simulated links and data: it keeps none where the
 * link is fast or the data does not shrink, moves to the codec (or the mix
 * of two) that is fastest where the link is slow, and backs out of a switch
 * that does not deliver (no new trial for a while, longer each time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "migration/send/autocomp.h"

#define MS	  1000000ull
#define BATCH_RAW (512u << 10)

/* A machine: the link's capacity, each codec's ratio (wire/raw) and speed
 * (raw bytes/s per worker), and how fast the destination takes raw bytes. */
struct world {
	double link_bps, ratio[COMPRESS_KINDS], speed_bps[COMPRESS_KINDS], dest_bps;
};

static double cpu_per_byte(const struct world *w, enum compress_kind c)
{
	return c == COMPRESS_NONE ? 0 : 1 / w->speed_bps[c];
}

/* Raw bytes per second the pipeline really moves with the plan in force,
 * and the wire bytes per raw byte. */
static double moves(const struct world *w, const struct autocomp *a, double *wire)
{
	const struct codec_plan *p = &a->plan;
	double f = p->hi_share;
	double cpu = (1 - f) * cpu_per_byte(w, p->lo) + f * cpu_per_byte(w, p->hi);
	double x = w->link_bps / (*wire = (1 - f) * w->ratio[p->lo] + f * w->ratio[p->hi]);

	if (cpu > 0 && a->workers / cpu < x)
		x = a->workers / cpu;
	return x < w->dest_bps ? x : w->dest_bps;
}

/* Run for ms milliseconds in 1 ms steps, as the workers would report. */
static void run(struct autocomp *a, const struct world *w, uint64_t *now, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		double per, raw = moves(w, a, &per) / 1000, wire = raw * per;
		/* Link-bound: the workers wait on the socket most of the step. */
		uint64_t wait = wire * 1000 >= 0.99 * w->link_bps ? MS * 8 / 10 : 0;

		*now += MS;
		for (int s = COMPRESS_LZ4; s < COMPRESS_KINDS; s++)
			if (autocomp_take_sample(a, (enum compress_kind)s, *now) ||
			    s == (int)a->plan.lo || s == (int)a->plan.hi)
				autocomp_observe_codec(
					a, (enum compress_kind)s, BATCH_RAW,
					(uint64_t)(BATCH_RAW * w->ratio[s]),
					(uint64_t)(BATCH_RAW / w->speed_bps[s] * 1e9), *now);
		autocomp_observe_send(a, (uint64_t)raw, (uint64_t)wire, wait, *now);
	}
}

/* The plan in force, or, in the middle of a trial, the one it may go back to. */
static const struct codec_plan *settled(const struct autocomp *a)
{
	return a->trial ? &a->trial_from : &a->plan;
}

static void expect_plan(const struct autocomp *a, enum compress_kind lo, enum compress_kind hi)
{
	char name[32];

	if (settled(a)->lo != lo || settled(a)->hi != hi)
		fail_msg("plan %s, expected %s+%s", codec_plan_name(settled(a), name, 32),
			 compress_kind_name(lo), compress_kind_name(hi));
}

static const struct world text_1gbit = {
	.link_bps = 117e6,
	.ratio = { 1, 0.51, 0.34 },
	.speed_bps = { 0, 445e6, 271e6 },
	.dest_bps = 2e9,
};

static void test_fast_link_keeps_none(void **unused)
{
	struct world w = text_1gbit;
	struct autocomp a;
	uint64_t now = 1;

	(void)unused;
	w.link_bps = 3e9; /* loopback */
	autocomp_init(&a, 2, now);
	run(&a, &w, &now, 2000);
	expect_plan(&a, COMPRESS_NONE, COMPRESS_NONE);
	assert_int_equal(a.changes, 1); /* the start only: not even a trial */
	assert_true(a.ratio[COMPRESS_ZSTD] > 0.3 && a.ratio[COMPRESS_ZSTD] < 0.4); /* sampled */
}

static void test_slow_link_compresses(void **unused)
{
	struct autocomp a;
	uint64_t now = 1;

	(void)unused;
	autocomp_init(&a, 2, now);
	run(&a, &text_1gbit, &now, 2000);
	expect_plan(&a, COMPRESS_ZSTD, COMPRESS_ZSTD); /* 344 MB/s of pages vs lz4's 229 */
	assert_true(a.link_bps > 100e6 && a.link_bps < 130e6);
	assert_int_equal(a.log[a.changes - 1].plan.lo, COMPRESS_ZSTD);
}

/* One worker: zstd alone is CPU-bound at 271 MB/s, lz4 alone link-bound at
 * 229; about 3 batches in 4 with zstd keep both busy at ~300. */
static void test_mix_when_cpu_is_short(void **unused)
{
	struct world slow_cpu = text_1gbit;
	struct autocomp a;
	uint64_t now = 1;

	(void)unused;
	autocomp_init(&a, 1, now);
	run(&a, &text_1gbit, &now, 2000);
	expect_plan(&a, COMPRESS_LZ4, COMPRESS_ZSTD);
	assert_true(settled(&a)->hi_share >= 0.6 && settled(&a)->hi_share <= 0.85);
	slow_cpu.speed_bps[COMPRESS_ZSTD] = 150e6; /* zstd's share falls to ~1 in 3 */
	autocomp_init(&a, 1, now);
	run(&a, &slow_cpu, &now, 2000);
	expect_plan(&a, COMPRESS_LZ4, COMPRESS_ZSTD);
	assert_true(settled(&a)->hi_share >= 0.2 && settled(&a)->hi_share <= 0.5);
	/* The mix's batches are spread: 10 in a row hold the share's count. */
	int hi = 0;
	for (int i = 0; i < 20; i++)
		hi += autocomp_next(&a) == COMPRESS_ZSTD;
	assert_int_equal(hi, (int)(a.plan.hi_share * 20 + 0.5));
}

static void test_random_data_keeps_none(void **unused)
{
	struct world w = text_1gbit;
	struct autocomp a;
	uint64_t now = 1;

	(void)unused;
	w.ratio[COMPRESS_LZ4] = w.ratio[COMPRESS_ZSTD] = 1.0;
	autocomp_init(&a, 2, now);
	run(&a, &w, &now, 2000);
	expect_plan(&a, COMPRESS_NONE, COMPRESS_NONE);
	/* Exploring a step up and back, less and less often (0.3, 0.6, 1.2 s). */
	assert_true(a.changes <= 7);
}

/* The model sees a slow link, but the destination is what limits: the
 * trial moves pages no faster, so it is undone and not retried at once. */
static void test_failed_trial_backs_out(void **unused)
{
	struct world w = text_1gbit;
	struct autocomp a;
	uint64_t now = 1;

	(void)unused;
	w.link_bps = 400e6;
	w.dest_bps = 400e6; /* raw bytes: compressing cannot help */
	autocomp_init(&a, 2, now);
	run(&a, &w, &now, 600);
	assert_true(a.changes >= 3); /* start, trial, back */
	expect_plan(&a, COMPRESS_NONE, COMPRESS_NONE);
	/* Each failed trial doubles the wait before the next: over 10 s, about
	 * log2(10 / 0.3) of them. */
	run(&a, &w, &now, 10000);
	assert_true(a.changes <= 1 + 2 * 6);
	expect_plan(&a, COMPRESS_NONE, COMPRESS_NONE);
}

static void test_sampling(void **unused)
{
	struct autocomp a;

	(void)unused;
	autocomp_init(&a, 1, 1);
	assert_false(autocomp_take_sample(&a, COMPRESS_NONE, 2));
	uint64_t t = AUTOCOMP_SAMPLE_NS;
	for (int i = 0; i < AUTOCOMP_MIN_SAMPLES; i++, t += AUTOCOMP_SAMPLE_NS / 8) {
		assert_true(autocomp_take_sample(&a, COMPRESS_ZSTD, t));  /* often at first */
		assert_false(autocomp_take_sample(&a, COMPRESS_ZSTD, t)); /* one worker takes it */
		autocomp_observe_codec(&a, COMPRESS_ZSTD, 1000, 300, 1000, t);
		assert_false(autocomp_take_sample(&a, COMPRESS_ZSTD, t + 1000));
	}
	assert_false(autocomp_take_sample(&a, COMPRESS_ZSTD, t));
	assert_true(autocomp_take_sample(&a, COMPRESS_ZSTD, t + AUTOCOMP_SAMPLE_NS));
	assert_string_equal(compress_kind_name(COMPRESS_LZ4), "lz4");
	char name[32];
	struct codec_plan mix = { COMPRESS_LZ4, COMPRESS_ZSTD, 0.4 };
	assert_string_equal(codec_plan_name(&mix, name, 32), "lz4+zstd:40%");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fast_link_keeps_none),
		cmocka_unit_test(test_slow_link_compresses),
		cmocka_unit_test(test_mix_when_cpu_is_short),
		cmocka_unit_test(test_random_data_keeps_none),
		cmocka_unit_test(test_failed_trial_backs_out),
		cmocka_unit_test(test_sampling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
