/* A deterministic stand-in for libFuzzer, so every build (plain and ASan)
 * runs each fuzz target: it replays the seed files given on the command line
 * and then mutations of them (bit flips, byte and word overwrites, cuts,
 * splices) from a fixed seed. Usage: fuzz-X [-n ITERATIONS] SEED... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static size_t mutate(uint8_t *buf, size_t len)
{
	size_t pos = len ? next() % len : 0;
	uint32_t word = (uint32_t)next();

	switch (next() % 5) {
	case 0:
		if (len)
			buf[pos] ^= (uint8_t)(1u << (next() % 8));
		return len;
	case 1:
		if (len)
			buf[pos] = (uint8_t)next();
		return len;
	case 2: /* lengths and counts live in aligned u32s */
		pos &= ~(size_t)3;
		if (pos + 4 <= len)
			memcpy(buf + pos, next() % 2 ? &word : (uint32_t[]){ word % 64 }, 4);
		return len;
	case 3:
		return pos;
	default: /* move a chunk over another place */
		if (len > 16) {
			size_t from = next() % len, n = next() % (len - (from > pos ? from : pos));

			memmove(buf + pos, buf + from, n);
		}
		return len;
	}
}

int main(int argc, char **argv)
{
	long iterations = 20000;
	int first = 1, seeds = 0;

	if (argc > 2 && !strcmp(argv[1], "-n")) {
		iterations = atol(argv[2]);
		first = 3;
	}
	for (int i = first; i < argc; i++) {
		size_t len, n;
		uint8_t *seed = load(argv[i], &len), *work;

		if (!seed) {
			fprintf(stderr, "fuzz: cannot read seed %s\n", argv[i]);
			return 1;
		}
		seeds++;
		LLVMFuzzerTestOneInput(seed, len);
		for (long it = 0; it < iterations; it++) {
			work = malloc(len + 1);
			memcpy(work, seed, len);
			n = len;
			for (int m = 0, k = 1 + (int)(next() % 4); m < k; m++)
				n = mutate(work, n);
			/* An exact-size copy, so reading past the end is caught by ASan. */
			uint8_t *exact = malloc(n ? n : 1);
			memcpy(exact, work, n);
			LLVMFuzzerTestOneInput(exact, n);
			free(exact);
			free(work);
		}
		free(seed);
	}
	printf("fuzz: %d seed(s), %ld mutations each, no crash\n", seeds, iterations);
	return seeds ? 0 : 1;
}
