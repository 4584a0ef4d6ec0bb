#include "guest/data.h"

#include "guest/abi.h"

/* 64 common English words. Mostly spaces between them, a small number one
 * word in 64: zstd -1 compresses 128-page batches of this 2.9-3.0:1
 * (tests/unit/test_data.c), about what it does on real guest memory. */
static const char *const words[64] = {
	"the",	   "of",      "and",	 "to",	      "in",	 "is",	   "that",    "for",
	"it",	   "as",      "was",	 "with",      "be",	 "by",	   "on",      "not",
	"he",	   "this",    "are",	 "or",	      "his",	 "from",   "at",      "which",
	"but",	   "have",    "an",	 "they",      "you",	 "were",   "their",   "one",
	"all",	   "we",      "can",	 "her",	      "has",	 "there",  "been",    "if",
	"more",	   "when",    "will",	 "would",     "who",	 "so",	   "no",      "memory",
	"page",	   "kernel",  "process", "migration", "network", "buffer", "request", "server",
	"machine", "virtual", "running", "system",    "data",	 "time",   "between", "value",
};

static uint64_t next(uint64_t *state)
{
	/* xorshift64* */
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void fill_random(uint64_t *dst, uint64_t words64, uint64_t key)
{
	uint64_t state = data_mix(key) | 1;

	for (uint64_t i = 0; i < words64; i++)
		dst[i] = next(&state);
}

static void fill_counter(uint64_t *dst, uint64_t words64, uint64_t key)
{
	for (uint64_t i = 0; i < words64; i++)
		dst[i] = key + i;
}

static char *put_number(char *p, char *end, uint64_t v)
{
	char digits[20];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < 20);
	while (n && p < end)
		*p++ = digits[--n];
	return p;
}

static void fill_text(char *p, uint64_t len, uint64_t key)
{
	static const char punct[16] = { ',', '.', '\n', ' ', ' ', ' ', ' ', ' ',
					' ', ' ', ' ',	' ', ' ', ' ', ' ', ' ' };
	uint64_t state = data_mix(key) | 1;
	char *end = p + len;

	while (p < end) {
		uint64_t r = next(&state);
		const char *w = words[r & 63];

		if ((r >> 6 & 63) == 0) {
			p = put_number(p, end, r >> 32 & 0x3ff);
		} else {
			while (*w && p < end)
				*p++ = *w++;
		}
		if (p < end)
			*p++ = punct[r >> 10 & 15];
	}
}

void data_fill(void *dst, uint64_t len, uint32_t kind, uint64_t key)
{
	switch (kind) {
	case FERRY_DATA_ZERO:
		for (uint64_t i = 0; i < len; i++)
			((char *)dst)[i] = 0;
		break;
	case FERRY_DATA_COUNTER:
		fill_counter(dst, len / 8, key);
		break;
	case FERRY_DATA_TEXT:
		fill_text(dst, len, key);
		break;
	default:
		fill_random(dst, len / 8, key);
		break;
	}
}
