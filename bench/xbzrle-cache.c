/* The XBZRLE cache designs side by side on real dirtying traces: a guest
 * runs a workload, its dirty log is synced every round (ROUND_MS), and the
 * same sequence of rounds is replayed through the set-associative cache
 * (ferry's) and the direct-mapped one (QEMU's design) of each size, counting
 * hits from round 2 on as a migration would see them. Also prints the rate
 * XBZRLE encodes at on this machine.
 *   bench-xbzrle-cache [--json FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/abi.h"
#include "codec/page_cache.h"
#include "codec/xbzrle.h"
#include "util/bitmap.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/loader.h"
#include "vm/vm.h"
#include "vm/workload.h"

#define MEM	 (1ull << 30)
#define ROUNDS	 12
#define ROUND_MS 300

struct trace {
	uint64_t *gfns;
	uint64_t n, round_end[ROUNDS];
};

static struct vm *start_vm(unsigned vcpus, const char *spec)
{
	struct vm_config cfg = { .mem_bytes = MEM, .vcpus = vcpus };
	struct ferry_workload_args args;
	struct vm *vm;

	if (workload_parse(spec, MEM, &args) < 0 || vm_create(&cfg, &vm) < 0 ||
	    loader_load(vm, guest_image, guest_image_len, &args) < 0 || vm_start(vm) < 0) {
		fprintf(stderr, "bench: %s\n", err_msg());
		exit(1);
	}
	return vm;
}

static void wait_filled(struct vm *vm)
{
	const struct ferry_vcpu_status *st = vm_read_ptr(vm, FERRY_STATUS_GPA, 2 * FERRY_PAGE_SIZE);

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		while (!st[i].filled)
			time_sleep_ns(10 * NS_PER_MS);
}

/* Record ROUNDS rounds of dirty pages of a guest running spec. */
static struct trace record(unsigned vcpus, const char *spec)
{
	struct vm *vm = start_vm(vcpus, spec);
	uint64_t npages = MEM / FERRY_PAGE_SIZE, *bits = calloc(BITMAP_WORDS(npages), 8);
	struct trace t = { .gfns = malloc(npages * ROUNDS * sizeof(uint64_t)) };

	wait_filled(vm);
	dirty_start(vm->dirty);
	dirty_sync(vm->dirty, bits); /* the first sync reports everything */
	memset(bits, 0, BITMAP_WORDS(npages) * 8);
	for (int r = 0; r < ROUNDS; r++) {
		time_sleep_ns(ROUND_MS * NS_PER_MS);
		dirty_sync(vm->dirty, bits);
		for (uint64_t g = bitmap_next(bits, npages, 0); g < npages;
		     g = bitmap_next(bits, npages, g + 1))
			t.gfns[t.n++] = g;
		t.round_end[r] = t.n;
		memset(bits, 0, BITMAP_WORDS(npages) * 8);
	}
	vm_destroy(vm);
	free(bits);
	return t;
}

static double hit_rate(const struct trace *t, uint64_t bytes, enum page_cache_kind kind)
{
	struct page_cache *pc = page_cache_create(bytes, MEM / FERRY_PAGE_SIZE, kind);
	struct page_cache_stats s0 = { 0 }, s;
	uint64_t i = 0;

	for (uint32_t r = 0; r < ROUNDS; r++) {
		if (r == 1)
			s0 = page_cache_get_stats(pc);
		for (; i < t->round_end[r]; i++)
			if (!page_cache_lookup(pc, t->gfns[i], r + 1))
				page_cache_insert(pc, t->gfns[i], r + 1);
	}
	s = page_cache_get_stats(pc);
	page_cache_destroy(pc);
	return (double)(s.hits - s0.hits) / (double)(s.hits + s.misses - s0.hits - s0.misses);
}

/* MB/s of pages encoded: one byte changed in 16, and one in 512. */
static double encode_rate(unsigned stride)
{
	static uint8_t old[FERRY_PAGE_SIZE], new[FERRY_PAGE_SIZE], out[FERRY_PAGE_SIZE];
	uint64_t t0, n = 0;

	for (unsigned i = 0; i < FERRY_PAGE_SIZE; i++)
		old[i] = new[i] = (uint8_t)(i * 31);
	for (unsigned i = 0; i < FERRY_PAGE_SIZE; i += stride)
		new[i] ^= 0x5a;
	t0 = time_now_ns();
	for (; time_now_ns() - t0 < 200 * NS_PER_MS; n++)
		if (xbzrle_encode(old, new, out, sizeof(out) - 1) < 0)
			return 0;
	return (double)n * FERRY_PAGE_SIZE / ((double)(time_now_ns() - t0) / 1e9) / 1e6;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *spec;
		unsigned vcpus;
	} traces[] = {
		{ "random 512M, 2 vCPUs", "dirty:wss=512M,rate=150M,write=byte", 2 },
		{ "hotset 10%/90%, 512M, 2 vCPUs",
		  "dirty:wss=512M,rate=150M,pattern=hotset,write=byte", 2 },
		{ "hotset 10%/90%, 768M, 3 vCPUs",
		  "dirty:wss=768M,rate=150M,pattern=hotset,write=byte", 3 },
		{ "sequential 256M, 1 vCPU",
		  "dirty:wss=256M,rate=150M,pattern=sequential,write=byte", 1 },
	};
	static const uint64_t sizes[] = { 64ull << 20, 128ull << 20, 256ull << 20, 512ull << 20 };
	FILE *json = argc == 3 && !strcmp(argv[1], "--json") ? fopen(argv[2], "a") : NULL;

	log_set_level(LOG_WARN);
	printf("XBZRLE encoding: %.0f MB/s (1 byte in 16 changed), %.0f MB/s (1 in 512)\n\n",
	       encode_rate(16), encode_rate(512));
	printf("%-32s %8s %12s %12s\n", "trace (rounds of 300 ms)", "cache", "set-assoc", "direct");
	for (size_t t = 0; t < sizeof(traces) / sizeof(traces[0]); t++) {
		struct trace tr = record(traces[t].vcpus, traces[t].spec);

		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			double a = hit_rate(&tr, sizes[s], PAGE_CACHE_ASSOC);
			double d = hit_rate(&tr, sizes[s], PAGE_CACHE_DIRECT);

			printf("%-32s %6lluM %11.1f%% %11.1f%%\n", traces[t].name,
			       (unsigned long long)(sizes[s] >> 20), a * 100, d * 100);
			if (json)
				fprintf(json,
					"{\"bench\":\"xbzrle-cache\",\"trace\":\"%s\",\"cache_mib\":%llu,\"assoc\":%.4f,\"direct\":%.4f}\n",
					traces[t].name, (unsigned long long)(sizes[s] >> 20), a, d);
		}
		free(tr.gfns);
	}
	if (json)
		fclose(json);
	return 0;
}
