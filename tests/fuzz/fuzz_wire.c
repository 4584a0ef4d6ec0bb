/* Fuzz target: the wire's framing as a reader meets it (migration/wire.h):
 * a stream of records (framed from the input: frame.h) read one after
 * another from a socket, each header checked, optional records of unknown
 * types skipped (within the budget), each body read and its checksum
 * checked: a malformed stream is a clean error, never a read past a
 * record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/wire.h"
#include "frame.h"
#include "stream/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t stream[FRAME_MAX];
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	size_t len = frame_records(data, size, stream);
	struct chan c;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	if (write(sv[0], stream, len) != (ssize_t)len)
		abort();
	shutdown(sv[0], SHUT_WR);
	chan_init_fd(&c, sv[1]);
	c.timeout_ms = 1000;
	while (wire_recv(&c, &hdr, &buf) == 0)
		if (hdr.type & REC_OPTIONAL && rec_header_check(&hdr, &(int){ 0 }) < 0)
			abort(); /* only records it knows come out */
	if (c.skipped > WIRE_SKIP_MAX + sizeof(hdr) + REC_MAX_BODY)
		abort();
	wire_buf_free(&buf);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
