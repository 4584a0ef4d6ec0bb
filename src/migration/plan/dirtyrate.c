#include "migration/plan/dirtyrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/digest.h"
#include "codec/xbzrle.h"
#include "codec/zero.h"
#include "migration/plan/copyrate.h"
#include "migration/send/batch.h"
#include "migration/send/meter.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/page.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/* Sent to time ferry's copy: 17-24 ms at 2.9-4.6 GB/s by one sender on this
 * 2-core host; two side by side moved 2.6-3.0 GB/s (four threads, two cores). */
#define COPY_BYTES (64ull << 20)

struct dirtyrate {
	struct vm *vm;
	pthread_t thread;
	uint64_t npages;
	uint64_t *window; /* one window's pages */
	uint64_t *seen;	  /* every page seen, for the working set */
	uint64_t *second; /* pages seen in the second half */
	uint64_t sample_gfn[DIRTYRATE_SAMPLES];
	uint8_t *sample; /* copies of the sampled pages */
	uint32_t nsamples;
	double rates[DIRTYRATE_MAX_SECONDS * 1000 / DIRTYRATE_WINDOW_MS];    /* each window's */
	double syncs_ms[DIRTYRATE_MAX_SECONDS * 1000 / DIRTYRATE_WINDOW_MS]; /* its sync's time */

	pthread_mutex_t lock; /* protects result */
	struct dirtyrate_result result;
};

static uint64_t count_zero_pages(struct vm *vm, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t g = 0; g < npages; g++)
		n += zero_page(mem_host(&vm->mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE));
	return n;
}

/* Copy up to DIRTYRATE_SAMPLES of the pages seen so far, spread evenly. */
static void take_samples(struct dirtyrate *d)
{
	uint64_t total = bitmap_count(d->seen, d->npages), step, i = 0;

	step = total > DIRTYRATE_SAMPLES ? total / DIRTYRATE_SAMPLES : 1;
	for (uint64_t g = bitmap_next(d->seen, d->npages, 0); g < d->npages;
	     g = bitmap_next(d->seen, d->npages, g + 1), i++) {
		if (i % step || d->nsamples == DIRTYRATE_SAMPLES)
			continue;
		d->sample_gfn[d->nsamples] = g;
		memcpy(d->sample + (size_t)d->nsamples++ * FERRY_PAGE_SIZE,
		       mem_host(&d->vm->mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE),
		       FERRY_PAGE_SIZE);
	}
}

/* Mean XBZRLE size of the sampled pages dirtied again since their copy,
 * as byte deltas (a cache hit) and as deltas of lines (a miss with line
 * digests). */
static void encode_samples(struct dirtyrate *d, struct dirtyrate_result *r)
{
	uint8_t out[FERRY_PAGE_SIZE];
	uint64_t bytes = 0, line_bytes = 0;

	for (uint32_t i = 0; i < d->nsamples; i++) {
		uint64_t g = d->sample_gfn[i];
		const uint8_t *old = d->sample + (size_t)i * FERRY_PAGE_SIZE;
		const uint8_t *now = mem_host(&d->vm->mem, g * FERRY_PAGE_SIZE, FERRY_PAGE_SIZE);
		int n;

		if (!bitmap_test(d->second, g))
			continue;
		n = xbzrle_encode(old, now, out, FERRY_PAGE_SIZE - 1);
		bytes += n < 0 ? FERRY_PAGE_SIZE : (uint64_t)n;
		n = lines_delta(old, now, out, FERRY_PAGE_SIZE - 1);
		line_bytes += n < 0 ? FERRY_PAGE_SIZE : (uint64_t)n;
		r->xbzrle_samples++;
	}
	if (r->xbzrle_samples) {
		r->xbzrle_bytes_per_page = (double)bytes / r->xbzrle_samples;
		r->line_bytes_per_page = (double)line_bytes / r->xbzrle_samples;
	}
}

/* Each codec on the sampled pages, a batch at a time as the pipeline sends
 * them (a batch that saves less than 1/BATCH_SHRINK_MIN goes raw). */
#define BATCH (BATCH_PAGES * FERRY_PAGE_SIZE)
static void compress_samples(struct dirtyrate *d, struct dirtyrate_result *r)
{
	const uint64_t raw = (uint64_t)d->nsamples * FERRY_PAGE_SIZE;
	uint8_t *frame = malloc(compress_bound(BATCH));

	for (int k = COMPRESS_LZ4; k < COMPRESS_KINDS && raw && frame; k++) {
		struct compressor c = { 0 };
		uint64_t wire = 0, t0 = time_thread_cpu_ns();

		if (compressor_init(&c, (enum compress_kind)k, 1) < 0)
			continue;
		for (uint64_t at = 0; at < raw; at += BATCH) {
			size_t n = raw - at < BATCH ? raw - at : BATCH;
			long len = c.backend->compress(&c, d->sample + at, n, frame,
						       compress_bound(BATCH));

			wire += len > 0 && (size_t)len <= n - n / BATCH_SHRINK_MIN ? (uint64_t)len
										   : n;
		}
		r->codec_bps[k] = (double)raw * 1e9 / (double)(time_thread_cpu_ns() - t0 + 1);
		r->codec_ratio[k] = (double)wire / (double)raw;
		compressor_free(&c);
	}
	free(frame);
}

/* One window: its pages, its rate, how long its sync took, and the running
 * totals. */
static int window(struct dirtyrate *d, uint64_t *pages, bool second_half, double *rate,
		  double *sync_ms)
{
	uint64_t t0 = time_now_ns();
	int64_t n;

	time_sleep_ns(DIRTYRATE_WINDOW_MS * NS_PER_MS);
	n = dirty_sync(d->vm->dirty, d->window);
	if (n < 0)
		return (int)n;
	*pages += (uint64_t)n;
	*rate = (double)n * 1e9 / (double)(time_now_ns() - t0);
	*sync_ms = (double)dirty_get_stats(d->vm->dirty).last_sync_ns / 1e6;
	for (uint64_t w = 0; w < BITMAP_WORDS(d->npages); w++) {
		if (second_half)
			d->second[w] |= d->window[w];
		d->seen[w] |= d->window[w];
		d->window[w] = 0;
	}
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The busiest window, and the quietest and busiest tenth of them; the
 * median sync. */
static void spread(struct dirtyrate *d, unsigned windows, struct dirtyrate_result *r)
{
	if (!windows)
		return;
	qsort(d->rates, windows, sizeof(*d->rates), by_value);
	r->peak_pps = d->rates[windows - 1];
	r->rate_p10_pps = d->rates[windows / 10];
	r->rate_p90_pps = d->rates[windows - 1 - windows / 10];
	qsort(d->syncs_ms, windows, sizeof(*d->syncs_ms), by_value);
	r->sync_ms = d->syncs_ms[windows / 2];
}

static uint64_t slept_ns(struct dirtyrate *d, unsigned vcpu)
{
	return __atomic_load_n(&d->vm->vcpus[vcpu]->slept_ns, __ATOMIC_RELAXED);
}

static int measure(struct dirtyrate *d, struct dirtyrate_result *r)
{
	unsigned windows = (unsigned)(r->seconds * 1000 / DIRTYRATE_WINDOW_MS);
	uint64_t vcpu0[VM_MAX_VCPUS], slept0[VM_MAX_VCPUS], pages = 0, t0;
	unsigned w;
	int rc = dirty_start(d->vm->dirty);

	if (rc < 0)
		return rc;
	/* The first sync after a start reports every page: not a rate. */
	if (dirty_sync(d->vm->dirty, d->window) < 0)
		return -EIO;
	memset(d->window, 0, BITMAP_WORDS(d->npages) * 8);
	for (unsigned i = 0; i < r->nr_vcpus; i++) {
		vcpu0[i] = dirty_vcpu_pages(d->vm->dirty, i);
		slept0[i] = slept_ns(d, i);
	}
	t0 = time_now_ns();
	for (w = 0; w < windows && rc == 0; w++) {
		if (w == windows / 2)
			take_samples(d);
		rc = window(d, &pages, w >= windows / 2, &d->rates[w], &d->syncs_ms[w]);
		pthread_mutex_lock(&d->lock);
		d->result.elapsed_s = (double)(time_now_ns() - t0) / 1e9;
		pthread_mutex_unlock(&d->lock);
	}
	r->elapsed_s = (double)(time_now_ns() - t0) / 1e9;
	r->rate_pps = (double)pages / r->elapsed_s;
	spread(d, rc == 0 ? w : 0, r);
	r->working_set_pages = bitmap_count(d->seen, d->npages);
	for (unsigned i = 0; i < r->nr_vcpus; i++) {
		double slept = (double)(slept_ns(d, i) - slept0[i]) / 1e9;

		r->vcpu_busy[i] = slept >= r->elapsed_s ? 0 : 1 - slept / r->elapsed_s;
		if (r->per_vcpu)
			r->vcpu_pps[i] = (double)(dirty_vcpu_pages(d->vm->dirty, i) - vcpu0[i]) /
					 r->elapsed_s;
	}
	encode_samples(d, r);
	compress_samples(d, r);
	dirty_stop(d->vm->dirty);
	return rc;
}

/* Senders side by side to time: one a core, at least two. */
static unsigned parallel_senders(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores <= 1)
		return 1;
	return cores > COPY_SENDERS_MAX ? COPY_SENDERS_MAX : (unsigned)cores;
}

static void *dirtyrate_thread(void *arg)
{
	struct dirtyrate *d = arg;
	struct dirtyrate_result r;
	int rc;

	pthread_setname_np(pthread_self(), "dirtyrate");
	pthread_mutex_lock(&d->lock);
	r = d->result;
	pthread_mutex_unlock(&d->lock);
	r.zero_pages = count_zero_pages(d->vm, d->npages);
	rc = measure(d, &r);
	if (rc == 0) {
		r.copy_bps = copy_rate_bps(d->sample, d->nsamples, COPY_BYTES, 1);
		r.copy_parallel_senders = parallel_senders();
		r.copy_parallel_bps = r.copy_parallel_senders > 1
					      ? copy_rate_bps(d->sample, d->nsamples, COPY_BYTES,
							      r.copy_parallel_senders)
					      : r.copy_bps;
		r.verify_ms = verify_cost_ms(&d->vm->mem, 3);
	}
	r.status = rc < 0 ? DIRTYRATE_FAILED : DIRTYRATE_MEASURED;
	r.ended_ns = time_now_ns();
	if (rc < 0)
		snprintf(r.reason, sizeof(r.reason), "%s", err_msg());
	else
		log_info(
			"dirty rate: %.0f pages/s (peak %.0f), working set %llu pages, over %.1f s",
			r.rate_pps, r.peak_pps, (unsigned long long)r.working_set_pages,
			r.elapsed_s);
	pthread_mutex_lock(&d->lock);
	d->result = r;
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void free_buffers(struct dirtyrate *d)
{
	free(d->window);
	free(d->seen);
	free(d->second);
	free(d->sample);
	free(d);
}

int dirtyrate_start(struct vm *vm, unsigned seconds, struct dirtyrate **out)
{
	struct dirtyrate *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return err_set(-ENOMEM, "out of memory");
	if (seconds < 1 || seconds > DIRTYRATE_MAX_SECONDS) {
		free(d);
		return err_set(-EINVAL, "measure for 1 to %u seconds", DIRTYRATE_MAX_SECONDS);
	}
	d->vm = vm;
	d->npages = vm->mem.size / FERRY_PAGE_SIZE;
	d->window = calloc(BITMAP_WORDS(d->npages), 8);
	d->seen = calloc(BITMAP_WORDS(d->npages), 8);
	d->second = calloc(BITMAP_WORDS(d->npages), 8);
	d->sample = malloc((size_t)DIRTYRATE_SAMPLES * FERRY_PAGE_SIZE);
	if (!d->window || !d->seen || !d->second || !d->sample) {
		free_buffers(d);
		return err_set(-ENOMEM, "out of memory");
	}
	d->result = (struct dirtyrate_result){ .status = DIRTYRATE_MEASURING,
					       .seconds = seconds,
					       .mem_pages = d->npages,
					       .nr_vcpus = vm->nr_vcpus,
					       .per_vcpu = dirty_per_vcpu(vm->dirty) };
	pthread_mutex_init(&d->lock, NULL);
	rc = pthread_create(&d->thread, NULL, dirtyrate_thread, d);
	if (rc) {
		free_buffers(d);
		return err_set(-rc, "cannot start the measuring thread: %s", strerror(rc));
	}
	*out = d;
	return 0;
}

struct dirtyrate_result dirtyrate_get(struct dirtyrate *d)
{
	struct dirtyrate_result r;

	pthread_mutex_lock(&d->lock);
	r = d->result;
	pthread_mutex_unlock(&d->lock);
	return r;
}

bool dirtyrate_running(struct dirtyrate *d)
{
	return d && dirtyrate_get(d).status == DIRTYRATE_MEASURING;
}

void dirtyrate_free(struct dirtyrate *d)
{
	if (!d)
		return;
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->lock);
	free_buffers(d);
}
