/* Fuzz target: the wire's framing as a reader meets it (migration/wire.h):
 * a stream of records (framed from the input: frame.h) read one after
 * another from a socket, each header checked, optional records of unknown
 * types skipped (within the budget), each body read and its checksum
 * checked: a malformed stream is a clean error, never a read past a
 * record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migration/wire.h"
#include "frame.h"
#include "stream/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	struct chan c;
	int skip;

	if (frame_chan(NULL, 0, data, size, &c) < 0)
		return 0;
	c.timeout_ms = 1000;
	while (wire_recv(&c, &hdr, &buf) == 0)
		if (rec_header_check(&hdr, &skip) < 0 || skip)
			abort(); /* only records it knows come out */
	if (c.skipped > WIRE_SKIP_MAX + sizeof(hdr) + REC_MAX_BODY)
		abort();
	wire_buf_free(&buf);
	chan_close(&c);
	return 0;
}
