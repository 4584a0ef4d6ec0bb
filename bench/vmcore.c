/* Benchmarks of the VMM core (issue: the VMM core):
 *   dirty-rate  highest guest dirty rate per vCPU, tracking off vs on
 *   sync        cost of one dirty sync, 1 GiB and 4 GiB, bitmap vs ring,
 *               idle guest vs a 100 MiB/s dirtier
 *   pause       vCPU pause latency for 1, 2 and 8 vCPUs, busy and sleeping
 * Prints a table per part and, with --json FILE, one JSON line per result.
 * Medians of several measurements; the machine is shared and noisy. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/abi.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/loader.h"
#include "vm/vm.h"
#include "vm/workload.h"

static FILE *json_out;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[(int)((n - 1) * p + 0.5)];
}

static struct vm *start_vm(uint64_t mem, unsigned vcpus, enum dirty_backend backend,
			   const char *spec)
{
	struct vm_config cfg = { .mem_bytes = mem, .vcpus = vcpus, .dirty_backend = backend };
	struct ferry_workload_args args;
	struct vm *vm;

	if (workload_parse(spec, mem, &args) < 0 || vm_create(&cfg, &vm) < 0 ||
	    loader_load(vm, guest_image, guest_image_len, &args) < 0 || vm_start(vm) < 0) {
		fprintf(stderr, "bench: %s\n", err_msg());
		exit(1);
	}
	return vm;
}

static const struct ferry_vcpu_status *status(struct vm *vm)
{
	return vm_read_ptr(vm, FERRY_STATUS_GPA, 2 * FERRY_PAGE_SIZE);
}

static uint64_t written(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += status(vm)[i].pages_written;
	return n;
}

static double wait_filled(struct vm *vm)
{
	uint64_t start = time_now_ns();

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		while (!status(vm)[i].filled)
			time_sleep_ns(5 * NS_PER_MS);
	return time_ms_since(start);
}

/* ---- dirty rate ---- */

enum tracking {
	TRACK_OFF,
	TRACK_BITMAP,
	TRACK_RING
};
static const char *const tracking_names[] = { "off", "bitmap", "ring" };

/* Pages written per second per vCPU over seconds, syncing every 100 ms when tracking. */
static double measure_rate(struct vm *vm, enum tracking t, double seconds)
{
	uint64_t *bits = calloc(BITMAP_WORDS(dirty_pages(vm->dirty)), 8);
	uint64_t start, first, end;

	if (t != TRACK_OFF) {
		dirty_start(vm->dirty);
		dirty_sync(vm->dirty, bits);
	}
	first = written(vm);
	start = time_now_ns();
	end = start + (uint64_t)(seconds * 1e9);
	while (time_now_ns() < end) {
		time_sleep_ns(100 * NS_PER_MS);
		if (t != TRACK_OFF)
			dirty_sync(vm->dirty, bits);
	}
	double rate = (double)(written(vm) - first) * 1e9 / (double)(time_now_ns() - start);
	free(bits);
	return rate / vm->nr_vcpus;
}

static void bench_dirty_rate(void)
{
	static const char *const writes[] = { "byte", "page" };

	printf("\n== Highest guest dirty rate (pages/s per vCPU; 512 MiB working set, random, sync every 100 ms when tracking)\n");
	printf("%-6s %-5s %12s %12s %12s %8s %8s\n", "vcpus", "write", "off", "bitmap", "ring",
	       "bitmap%", "ring%");
	for (unsigned vcpus = 1; vcpus <= 2; vcpus++) {
		for (int w = 0; w < 2; w++) {
			double rate[3];
			char spec[96];

			snprintf(spec, sizeof(spec), "dirty:wss=512M,rate=max,write=%s", writes[w]);
			for (int t = 0; t < 3; t++) {
				struct vm *vm =
					start_vm(1ull << 30, vcpus,
						 t == TRACK_RING ? DIRTY_RING : DIRTY_BITMAP, spec);
				double samples[3];

				wait_filled(vm);
				for (int i = 0; i < 3; i++)
					samples[i] = measure_rate(vm, (enum tracking)t, 1.0);
				rate[t] = percentile(samples, 3, 0.5);
				vm_destroy(vm);
				if (json_out)
					fprintf(json_out,
						"{\"bench\":\"dirty-rate\",\"vcpus\":%u,\"write\":\"%s\",\"tracking\":\"%s\",\"pages_per_s_per_vcpu\":%.0f}\n",
						vcpus, writes[w], tracking_names[t], rate[t]);
			}
			printf("%-6u %-5s %12.0f %12.0f %12.0f %7.0f%% %7.0f%%\n", vcpus, writes[w],
			       rate[0], rate[1], rate[2], 100 * rate[1] / rate[0],
			       100 * rate[2] / rate[0]);
		}
	}
}

/* ---- sync cost ---- */

static void sync_cost(uint64_t mem, enum dirty_backend backend, bool dirtier)
{
	const char *spec = dirtier ? "dirty:rate=100M,write=byte,data=random" : "idle:data=random";
	struct vm *vm = start_vm(mem, 2, backend, spec);
	uint64_t *bits = calloc(BITMAP_WORDS(dirty_pages(vm->dirty)), 8);
	double fill_ms = wait_filled(vm), start_ms, first_ms, ms[20], pages[20];
	uint64_t t0 = time_now_ns();

	dirty_start(vm->dirty);
	start_ms = time_ms_since(t0);
	dirty_sync(vm->dirty, bits);
	first_ms = (double)dirty_get_stats(vm->dirty).last_sync_ns / 1e6;
	for (int i = 0; i < 20; i++) {
		time_sleep_ns(100 * NS_PER_MS);
		memset(bits, 0, BITMAP_WORDS(dirty_pages(vm->dirty)) * 8);
		dirty_sync(vm->dirty, bits);
		ms[i] = (double)dirty_get_stats(vm->dirty).last_sync_ns / 1e6;
		pages[i] = (double)dirty_get_stats(vm->dirty).last_dirty;
	}
	double med = percentile(ms, 20, 0.5), p90 = percentile(ms, 20, 0.9);
	double dirty_med = percentile(pages, 20, 0.5);
	printf("%-5llu %-7s %-8s %10.0f %10.2f %10.2f %10.3f %10.3f %10.0f\n",
	       (unsigned long long)(mem >> 30), backend == DIRTY_RING ? "ring" : "bitmap",
	       dirtier ? "100MiB/s" : "idle", fill_ms, start_ms, first_ms, med, p90, dirty_med);
	if (json_out)
		fprintf(json_out,
			"{\"bench\":\"sync\",\"mem_gib\":%llu,\"backend\":\"%s\",\"load\":\"%s\",\"start_ms\":%.3f,\"first_sync_ms\":%.3f,\"sync_ms_median\":%.3f,\"sync_ms_p90\":%.3f,\"dirty_pages_median\":%.0f}\n",
			(unsigned long long)(mem >> 30), backend == DIRTY_RING ? "ring" : "bitmap",
			dirtier ? "100MiB/s" : "idle", start_ms, first_ms, med, p90, dirty_med);
	free(bits);
	vm_destroy(vm);
}

static void bench_sync(void)
{
	printf("\n== Cost of one dirty sync (2 vCPUs, all memory written first; 20 syncs 100 ms apart)\n");
	printf("%-5s %-7s %-8s %10s %10s %10s %10s %10s %10s\n", "GiB", "backend", "guest",
	       "fill ms", "start ms", "first ms", "median ms", "p90 ms", "pages");
	for (int g = 0; g < 2; g++)
		for (int b = 0; b < 2; b++)
			for (int d = 0; d < 2; d++)
				sync_cost((g ? 4ull : 1ull) << 30, b ? DIRTY_RING : DIRTY_BITMAP,
					  d);
}

/* ---- pause latency ---- */

static void pause_latency(unsigned vcpus, bool busy)
{
	struct vm *vm = start_vm(256ull << 20, vcpus, DIRTY_BITMAP,
				 busy ? "dirty:wss=64M,rate=max" : "dirty:wss=64M,rate=1000pps");
	double us[50];

	wait_filled(vm);
	for (int i = 0; i < 50; i++) {
		time_sleep_ns(20 * NS_PER_MS);
		vm_pause(vm);
		us[i] = (double)vm->last_pause_ns / 1e3;
		vm_resume(vm);
	}
	double med = percentile(us, 50, 0.5), p90 = percentile(us, 50, 0.9), max = us[49];
	printf("%-6u %-9s %10.0f %10.0f %10.0f\n", vcpus, busy ? "busy" : "sleeping", med, p90,
	       max);
	if (json_out)
		fprintf(json_out,
			"{\"bench\":\"pause\",\"vcpus\":%u,\"guest\":\"%s\",\"pause_us_median\":%.1f,\"pause_us_p90\":%.1f,\"pause_us_max\":%.1f}\n",
			vcpus, busy ? "busy" : "sleeping", med, p90, max);
	vm_destroy(vm);
}

static void bench_pause(void)
{
	static const unsigned counts[] = { 1, 2, 8 };

	printf("\n== vCPU pause latency (request -> every vCPU parked outside KVM_RUN; 50 pauses)\n");
	printf("%-6s %-9s %10s %10s %10s\n", "vcpus", "guest", "median us", "p90 us", "max us");
	for (int i = 0; i < 3; i++) {
		pause_latency(counts[i], true);
		pause_latency(counts[i], false);
	}
}

int main(int argc, char **argv)
{
	bool all = argc < 2 || !strcmp(argv[1], "all");

	log_set_level(LOG_WARN);
	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "--json"))
			json_out = fopen(argv[i + 1], "a");
	if (!kvm_available()) {
		printf("bench: /dev/kvm is not available\n");
		return 1;
	}
	if (all || !strcmp(argv[1], "dirty-rate"))
		bench_dirty_rate();
	if (all || !strcmp(argv[1], "sync"))
		bench_sync();
	if (all || !strcmp(argv[1], "pause"))
		bench_pause();
	if (json_out)
		fclose(json_out);
	return 0;
}
