/* The predictor: a guest dirtying faster than the link never converges with
 * none; XBZRLE, throttling, SDPS and dirty-limit make it; SDPS gets there in
 * fewer rounds than the stepping throttle; dirty-limit leaves a vCPU that
 * does not dirty alone; a slow dirtier converges with none; a vCPU that
 * idles between bursts is throttled harder and for longer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "migration/send/policy.h"
#include "migration/plan/predict.h"
#include "migration/send/encoder.h"

/* A 2-vCPU guest of mem pages (zero of them zero) whose vCPU 0 dirties pps
 * pages a second over wss pages and vCPU 1 nothing, counted per vCPU (the
 * dirty ring); a link of link_bps. */
static struct predict_input one_writer(uint64_t mem, uint64_t zero, uint64_t wss, double pps,
				       double link_bps)
{
	struct predict_input in = { .m = { .mem_pages = mem,
					   .zero_pages = zero,
					   .working_set_pages = wss,
					   .rate_pps = pps,
					   .nr_vcpus = 2,
					   .per_vcpu = true,
					   .vcpu_pps = { pps, 0 } },
				    .link_bps = link_bps };

	mig_params_default(&in.params);
	return in;
}

/* 256 MiB guest, 64 MiB working set, vCPU 0 dirtying 600 MiB/s, vCPU 1
 * nothing; a 30 MiB/s link. */
static struct predict_input fast_guest(void)
{
	struct predict_input in = one_writer(65536, 49152, 16384, 153600, 30 << 20);

	in.m.xbzrle_bytes_per_page = 120;
	return in;
}

static struct prediction run(struct predict_input in, enum converge_strategy s, uint64_t xbzrle)
{
	struct prediction p;

	in.params.converge = s;
	in.params.xbzrle_cache_bytes = xbzrle;
	predict(&in, &p);
	return p;
}

static void test_none_does_not_converge(void **unused)
{
	struct prediction p = run(fast_guest(), CONVERGE_NONE, 0);

	(void)unused;
	assert_false(p.converges);
	assert_true(p.rounds <= 10); /* gives up like the engine, after stuck rounds */
	assert_string_not_equal(p.why, "");
}

/* A cache under the working set: its misses cost a delta of lines where
 * line digests fit beside it (ferry dirtyrate measures that size). */
static void test_line_deltas(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction raw, lines;

	(void)unused;
	in.params.xbzrle_cache_bytes = 40 << 20; /* 64 MiB working set */
	raw = run(in, CONVERGE_NONE, 40 << 20);
	in.m.line_bytes_per_page = 300;
	lines = run(in, CONVERGE_NONE, 40 << 20);
	assert_true(lines.converges);
	assert_true(!raw.converges || lines.total_ms < raw.total_ms);
	assert_int_equal(encoder_digest_bytes(16 << 20, in.m.mem_pages), 0); /* do not fit */
	lines = run(in, CONVERGE_NONE, 16 << 20);
	in.m.line_bytes_per_page = 0;
	raw = run(in, CONVERGE_NONE, 16 << 20);
	assert_int_equal(lines.converges, raw.converges);
	assert_true(lines.total_ms == raw.total_ms);
}

static void test_every_way_out_converges(void **unused)
{
	struct prediction x = run(fast_guest(), CONVERGE_NONE, 128 << 20);
	struct prediction t = run(fast_guest(), CONVERGE_THROTTLE, 0);
	struct prediction s = run(fast_guest(), CONVERGE_SDPS, 0);
	struct prediction d = run(fast_guest(), CONVERGE_DIRTY_LIMIT, 0);
	struct prediction a = run(fast_guest(), CONVERGE_AUTO, 0);

	(void)unused;
	assert_true(x.converges && x.pct_max == 0);
	assert_true(t.converges && s.converges && d.converges && a.converges);
	assert_true(s.rounds < t.rounds);
	assert_true(s.total_ms < t.total_ms);
	assert_true(d.pct[0] > 90 && d.pct[1] == 0);
	assert_true(s.pct[1] == s.pct[0]); /* sdps slows every vCPU */
	assert_int_equal(a.used, CONVERGE_DIRTY_LIMIT);
	assert_true(x.downtime_ms <= 300 && s.downtime_ms <= 300);
}

static void test_slow_guest_needs_nothing(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction p;

	(void)unused;
	in.m.rate_pps = in.m.vcpu_pps[0] = 1024; /* 4 MiB/s */
	p = run(in, CONVERGE_AUTO, 0);
	assert_true(p.converges);
	assert_int_equal(p.pct_max, 0);
	assert_int_equal(p.used, CONVERGE_AUTO);
	/* Round 0: 16384 written pages and 49152 entries at 30 MiB/s. */
	assert_true(p.total_ms > 2000 && p.total_ms < 2500);
}

/* vCPU 0 writes 100 MiB/s busy a tenth of the time, vCPU 1 computes; a
 * 1 Gbit/s link. A throttle that leaves vCPU 0 more than a tenth of its time
 * takes only its idle time: dirty-limit has to go past 90%, in more rounds,
 * and the migration takes longer than for a vCPU that dirties flat out. */
static void test_paced_guest(void **unused)
{
	struct predict_input in = one_writer(262144, 100000, 65536, 25600, 119e6);
	struct prediction flat, paced;

	(void)unused;
	flat = run(in, CONVERGE_DIRTY_LIMIT, 0);
	in.m.vcpu_busy[0] = 0.1;
	in.m.vcpu_busy[1] = 1;
	paced = run(in, CONVERGE_DIRTY_LIMIT, 0);
	assert_true(flat.converges && paced.converges);
	assert_true(flat.pct[0] < 90);
	assert_true(paced.pct[0] > 90);
	assert_int_equal(paced.pct[1], 0);
	assert_true(paced.rounds > flat.rounds);
	assert_true(paced.total_ms > flat.total_ms * 1.2);
}

/* The forecast's rounds, as the report gives the real ones: round 0 sends
 * every page; each later one what the one before left dirty; the last,
 * paused, leaves nothing; their times and the downtime add up to the total. */
static void test_round_log(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction p = run(in, CONVERGE_SDPS, 0);
	double ms = 0;

	(void)unused;
	assert_true(p.converges && p.rounds >= 3 && p.rounds <= MIG_ROUND_LOG);
	assert_int_equal(p.round_log[0].pages, in.m.mem_pages);
	assert_int_equal(p.round_log[0].throttle_pct, 0);
	for (unsigned k = 1; k < p.rounds; k++)
		assert_int_equal(p.round_log[k].pages, p.round_log[k - 1].dirtied);
	assert_int_equal(p.round_log[p.rounds - 1].dirtied, 0);
	assert_true(p.round_log[p.rounds - 2].throttle_pct > 0);
	for (unsigned k = 0; k + 1 < p.rounds; k++)
		ms += p.round_log[k].ms;
	assert_true(ms + p.downtime_ms > p.total_ms - 1 && ms + p.downtime_ms < p.total_ms + 1);
}

/* The range holds the point; a steady guest's comes from the link alone
 * and is narrower than a guest's whose rate varies; where the busiest tenth
 * does not converge, neither does the range. */
static void test_range(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction p;
	struct predict_range steady, varied;

	(void)unused;
	in.params.converge = CONVERGE_SDPS;
	predict(&in, &p);
	predict_range(&in, &p, &steady);
	assert_true(steady.converges);
	assert_true(steady.total_ms[0] < p.total_ms && p.total_ms < steady.total_ms[1]);
	assert_true(steady.downtime_ms[0] <= p.downtime_ms &&
		    p.downtime_ms <= steady.downtime_ms[1]);
	/* The engine may switch at the first round that fits: both ends hold it. */
	assert_true(p.first_fit_downtime_ms > p.downtime_ms && p.first_fit_downtime_ms <= 300);
	assert_true(p.first_fit_total_ms < p.total_ms);
	assert_true(steady.downtime_ms[1] >= p.first_fit_downtime_ms);
	assert_true(steady.total_ms[0] <= p.first_fit_total_ms);
	in.m.rate_p10_pps = in.m.rate_pps * 0.7;
	in.m.rate_p90_pps = in.m.rate_pps * 1.3;
	predict_range(&in, &p, &varied);
	assert_true(varied.total_ms[1] - varied.total_ms[0] >
		    steady.total_ms[1] - steady.total_ms[0]);

	in = fast_guest(); /* 600 MiB/s on 30 MiB/s: none converges only if it slows */
	in.m.rate_pps = in.m.vcpu_pps[0] = 2048;
	in.m.rate_p90_pps = 200000;
	in.params.converge = CONVERGE_NONE;
	predict(&in, &p);
	predict_range(&in, &p, &varied);
	assert_true(p.converges);
	assert_false(varied.converges);
}

/* A codec that halves pages at 500 MB/s a worker: on a slow link round 0
 * takes about half as long; on a 10 Gbit/s link one worker holds the copy
 * back and four do not; auto forecasts the codec that moves pages fastest. */
static void test_compression(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction raw, lz4;

	(void)unused;
	in.m.rate_pps = in.m.vcpu_pps[0] = 0;
	in.m.codec_ratio[COMPRESS_LZ4] = 0.5;
	in.m.codec_bps[COMPRESS_LZ4] = 500e6;
	raw = run(in, CONVERGE_NONE, 0);
	in.params.compress.kind = COMPRESS_LZ4;
	lz4 = run(in, CONVERGE_NONE, 0);
	assert_true(lz4.total_ms < raw.total_ms * 0.6 && lz4.total_ms > raw.total_ms * 0.4);
	assert_int_equal(lz4.codec, COMPRESS_LZ4);

	in.link_bps = 1.25e9;
	lz4 = run(in, CONVERGE_NONE, 0);
	in.params.compress.kind = COMPRESS_NONE;
	raw = run(in, CONVERGE_NONE, 0);
	assert_true(lz4.total_ms > raw.total_ms * 2);
	in.params.compress.automatic = true;
	assert_int_equal(run(in, CONVERGE_NONE, 0).codec, COMPRESS_NONE);
	in.params.channels = 4;
	assert_int_equal(run(in, CONVERGE_NONE, 0).codec, COMPRESS_LZ4);
	in.params.compress = (struct mig_compress){ .kind = COMPRESS_LZ4 };
	assert_true(run(in, CONVERGE_NONE, 0).total_ms < raw.total_ms);
}

/* A link faster than the senders copy goes at the copy's rate: one
 * sender's, or with data channels what that many copy side by side (as
 * measured for one a core, on the line between). */
static void test_copy_rate(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction fast, capped, four, two;

	(void)unused;
	in.m.rate_pps = in.m.vcpu_pps[0] = 0;
	in.link_bps = 1.25e9;
	fast = run(in, CONVERGE_NONE, 0);
	in.m.copy_bps = in.link_bps / 4;
	capped = run(in, CONVERGE_NONE, 0);
	assert_true(capped.total_ms > fast.total_ms * 3.5 && capped.total_ms < fast.total_ms * 4.5);
	in.m.copy_parallel_bps = in.link_bps / 2; /* measured with 4 senders */
	in.m.copy_parallel_senders = 4;
	assert_true(run(in, CONVERGE_NONE, 0).total_ms == capped.total_ms); /* no channels */
	in.params.channels = 4;
	four = run(in, CONVERGE_NONE, 0);
	assert_true(four.total_ms > capped.total_ms * 0.45 &&
		    four.total_ms < capped.total_ms * 0.55);
	in.params.channels = 2; /* a third of the way: 1/4 + (1/2 - 1/4) / 3 of the link */
	two = run(in, CONVERGE_NONE, 0);
	assert_true(two.total_ms > four.total_ms && two.total_ms < capped.total_ms);
	in.params.channels = 0;
	in.m.copy_bps = in.link_bps * 4;
	assert_true(run(in, CONVERGE_NONE, 0).total_ms == fast.total_ms);
}

/* bench's converge-auto-1gbit: vCPU 0 rewrites its 128 MiB at 567 MiB/s on
 * a 1 Gbit/s link. Round 0's count stops at those 32800 pages, which over
 * its 2.25 s is not in the link's way: the published runs, made before the
 * engine probed long rounds, slowed the guest only after round 1 and took
 * 5.4-6.1 s (their decision logs say round 1). A round over a second whose
 * leftover does not fit the limit is probed now, and the guest slowed from
 * round 1 on. A shorter round is not: that guest is slowed a round late. */
static void test_saturated_round(void **unused)
{
	struct predict_input in = one_writer(262144, 196528, 32800, 567 * 256, 120.4e6);
	struct predict_range range;
	struct prediction p;

	(void)unused;
	p = run(in, CONVERGE_AUTO, 0);
	assert_true(p.converges && p.used == CONVERGE_DIRTY_LIMIT);
	assert_true(p.round_log[1].throttle_pct >= 85);
	assert_true(p.total_ms > 4000 && p.total_ms < 5000);
	/* Those runs paused the guest 7-199 ms against a point of 10-17: the
	 * engine may switch at the first round that fits, and the range says so
	 * (with the link's spread alone: the runs kept no measured spread). */
	in.params.converge = CONVERGE_AUTO;
	predict_range(&in, &p, &range);
	assert_true(p.downtime_ms < 20 && range.downtime_ms[1] > 250);
	assert_true(range.total_ms[0] < 4000);
	/* Round 0 of 0.9 s leaving 0.4 s of pages, not in the link's way. */
	in = one_writer(65536, 39081, 11758, 567 * 256, 120.4e6);
	p = run(in, CONVERGE_AUTO, 0);
	assert_true(p.round_log[0].ms < 1000);
	assert_int_equal(p.round_log[1].throttle_pct, 0);
	assert_true(p.round_log[2].throttle_pct >= 85);
}

/* The switchover's costs besides the pages, as measured: the final dirty
 * sync always; --verify's hashing of every page only when the migration
 * verifies. */
static void test_switchover_costs(void **unused)
{
	struct predict_input in = fast_guest();
	struct prediction plain, timed, verified, synced;

	(void)unused;
	in.m.rate_pps = in.m.vcpu_pps[0] = 1024; /* 4 MiB/s */
	plain = run(in, CONVERGE_AUTO, 0);
	in.m.verify_ms = 40;
	timed = run(in, CONVERGE_AUTO, 0);
	in.params.verify = true;
	verified = run(in, CONVERGE_AUTO, 0);
	assert_true(timed.downtime_ms == plain.downtime_ms);
	assert_true(verified.converges && verified.downtime_ms >= 40);
	assert_true(verified.downtime_ms > plain.downtime_ms + 30);
	in.params.verify = false;
	in.m.sync_ms = 20;
	synced = run(in, CONVERGE_AUTO, 0);
	assert_true(synced.converges && synced.downtime_ms > plain.downtime_ms + 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_does_not_converge),
		cmocka_unit_test(test_line_deltas),
		cmocka_unit_test(test_every_way_out_converges),
		cmocka_unit_test(test_slow_guest_needs_nothing),
		cmocka_unit_test(test_paced_guest),
		cmocka_unit_test(test_round_log),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_compression),
		cmocka_unit_test(test_copy_rate),
		cmocka_unit_test(test_saturated_round),
		cmocka_unit_test(test_switchover_costs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
