#include "codec/page_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "util/error.h"
#include "util/page.h"

#define WAYS  8u
#define EMPTY UINT64_MAX

struct slot {
	uint64_t gfn;
	uint32_t last_round;
};

struct page_cache {
	enum page_cache_kind kind;
	uint64_t nslots, nsets, npages;
	struct slot *slots;
	uint8_t *data;	 /* nslots pages */
	uint8_t *resent; /* per guest page: times re-sent, saturating */
	struct page_cache_stats stats;
};

struct page_cache *page_cache_create(uint64_t bytes, uint64_t npages, enum page_cache_kind kind)
{
	struct page_cache *pc = calloc(1, sizeof(*pc));
	uint64_t ways = kind == PAGE_CACHE_ASSOC ? WAYS : 1;

	if (!pc)
		goto oom;
	pc->kind = kind;
	pc->npages = npages;
	pc->nsets = bytes / FERRY_PAGE_SIZE / ways;
	pc->nslots = pc->nsets * ways;
	if (!pc->nsets) {
		free(pc);
		err_set(-EINVAL, "an XBZRLE cache needs at least %llu KiB",
			(unsigned long long)(ways * FERRY_PAGE_SIZE >> 10));
		return NULL;
	}
	pc->slots = malloc(pc->nslots * sizeof(*pc->slots));
	pc->resent = calloc(npages, 1);
	pc->data = mmap(NULL, pc->nslots * FERRY_PAGE_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pc->slots || !pc->resent || pc->data == MAP_FAILED) {
		if (pc->data == MAP_FAILED)
			pc->data = NULL;
		page_cache_destroy(pc);
		goto oom;
	}
	for (uint64_t i = 0; i < pc->nslots; i++)
		pc->slots[i] = (struct slot){ .gfn = EMPTY };
	return pc;
oom:
	err_set(-ENOMEM, "out of memory for a %llu MiB XBZRLE cache",
		(unsigned long long)(bytes >> 20));
	return NULL;
}

void page_cache_destroy(struct page_cache *pc)
{
	if (!pc)
		return;
	if (pc->data)
		munmap(pc->data, pc->nslots * FERRY_PAGE_SIZE);
	free(pc->slots);
	free(pc->resent);
	free(pc);
}

/* First slot of gfn's set. Hashing spreads regular strides over the sets. */
static uint64_t set_of(const struct page_cache *pc, uint64_t gfn)
{
	if (pc->kind == PAGE_CACHE_DIRECT)
		return gfn % pc->nslots;
	return ((gfn * 0x9e3779b97f4a7c15ull) >> 20) % pc->nsets * WAYS;
}

static unsigned ways_of(const struct page_cache *pc)
{
	return pc->kind == PAGE_CACHE_ASSOC ? WAYS : 1;
}

static uint8_t *data_of(struct page_cache *pc, uint64_t slot)
{
	return pc->data + slot * FERRY_PAGE_SIZE;
}

uint8_t *page_cache_lookup(struct page_cache *pc, uint64_t gfn, uint32_t round)
{
	uint64_t first = set_of(pc, gfn);

	if (pc->resent[gfn] < UINT8_MAX)
		pc->resent[gfn]++;
	for (unsigned w = 0; w < ways_of(pc); w++) {
		struct slot *s = &pc->slots[first + w];

		if (s->gfn == gfn) {
			s->last_round = round;
			pc->stats.hits++;
			return data_of(pc, first + w);
		}
	}
	pc->stats.misses++;
	return NULL;
}

/* How much a cached page is worth keeping: its re-sends, halved for every
 * round it has gone unused. */
static unsigned worth(const struct page_cache *pc, const struct slot *s, uint32_t round)
{
	uint32_t idle = round - s->last_round;

	return idle >= 8 ? 0 : pc->resent[s->gfn] >> idle;
}

uint8_t *page_cache_insert(struct page_cache *pc, uint64_t gfn, uint32_t round)
{
	uint64_t first = set_of(pc, gfn), victim = first;
	unsigned least = UINT32_MAX;

	for (unsigned w = 0; w < ways_of(pc); w++) {
		struct slot *s = &pc->slots[first + w];
		unsigned v = s->gfn == EMPTY ? 0 : worth(pc, s, round);

		if (s->gfn == EMPTY || v < least) {
			least = v;
			victim = first + w;
			if (s->gfn == EMPTY)
				break;
		}
	}
	if (pc->kind == PAGE_CACHE_ASSOC && pc->slots[victim].gfn != EMPTY &&
	    pc->resent[gfn] < least)
		return NULL;
	if (pc->slots[victim].gfn != EMPTY)
		pc->stats.evictions++;
	pc->stats.inserts++;
	pc->slots[victim] = (struct slot){ .gfn = gfn, .last_round = round };
	return data_of(pc, victim);
}

uint8_t *page_cache_seed(struct page_cache *pc, uint64_t gfn)
{
	uint64_t first = set_of(pc, gfn);

	for (unsigned w = 0; w < ways_of(pc); w++)
		if (pc->slots[first + w].gfn == EMPTY) {
			pc->slots[first + w] = (struct slot){ .gfn = gfn };
			pc->stats.inserts++;
			return data_of(pc, first + w);
		}
	return NULL;
}

void page_cache_drop(struct page_cache *pc, uint64_t gfn)
{
	uint64_t first = set_of(pc, gfn);

	for (unsigned w = 0; w < ways_of(pc); w++)
		if (pc->slots[first + w].gfn == gfn)
			pc->slots[first + w].gfn = EMPTY;
}

uint64_t page_cache_bytes(const struct page_cache *pc)
{
	return pc->nslots * FERRY_PAGE_SIZE;
}

struct page_cache_stats page_cache_get_stats(const struct page_cache *pc)
{
	return pc->stats;
}
