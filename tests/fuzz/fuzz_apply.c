/* Fuzz target: the destination writing a batch into guest memory, as a
 * channel does (migration/apply.h): checks, decompression, XBZRLE, writes.
 * The input is a selector byte (even: ZPAGES, odd: PAGES) and a body. A
 * malformed body is a clean error; nothing is written past guest memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migration/recv/apply.h"
#include "stream/format.h"
#include "util/bitmap.h"

#define MEM (16ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static struct page_writer w;
	static uint64_t written[BITMAP_WORDS(MEM / 4096)], damaged[BITMAP_WORDS(MEM / 4096)];
	uint32_t round = 0, len;
	uint8_t *body;

	if (!w.scratch && (mem_create(&mem, MEM, MEM_ANON) < 0 ||
			   page_writer_init(&w, &mem, written, damaged) < 0))
		abort();
	if (size < 1 || size - 1 > REC_MAX_BODY)
		return 0;
	len = (uint32_t)(size - 1);
	body = malloc(len ? len : 1); /* exact size, as wire_recv gives */
	memcpy(body, data + 1, len);
	if (len >= 8)
		memcpy(&round, body + 4, 4); /* PAGES and ZPAGES both keep it there */
	page_writer_apply(&w, data[0] & 1 ? REC_PAGES : REC_ZPAGES, body, len, round);
	free(body);
	return 0;
}
