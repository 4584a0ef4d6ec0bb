/* Fuzz target: the wire's framing as a reader meets it (migration/wire.h):
 * a stream of records read one after another from a socket, each header
 * checked, optional records of unknown types skipped (within the budget),
 * each body read and its checksum checked. The input is a list of records,
 * each a u32 type, a u16 length and that many body bytes; the target frames
 * them as a sender does, with a correct checksum unless the type's
 * reserved bit 30 asks for a wrong one, so the fuzzer reaches past the
 * checksums: a malformed stream is a clean error, never a read past a
 * record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/wire.h"
#include "stream/record.h"

#define MAX_STREAM (96u << 10) /* what a socket pair holds without a reader */
#define BAD_SUM	   0x40000000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frame the records of data into out; the stream's length. */
static size_t frame(const uint8_t *data, size_t size, uint8_t *out)
{
	size_t at = 0, used = 0;

	while (size - at >= 6) {
		uint32_t type;
		uint16_t len;
		struct rec_header hdr;
		struct iovec body;

		memcpy(&type, data + at, 4);
		memcpy(&len, data + at + 4, 2);
		at += 6;
		if (len > size - at)
			len = (uint16_t)(size - at);
		body = (struct iovec){ (void *)(data + at), len };
		rec_header_init(&hdr, type & ~BAD_SUM, &body, 1);
		hdr.checksum ^= !!(type & BAD_SUM);
		if (used + sizeof(hdr) + rec_padded(len) > MAX_STREAM)
			break;
		memcpy(out + used, &hdr, sizeof(hdr));
		memcpy(out + used + sizeof(hdr), data + at, len);
		memset(out + used + sizeof(hdr) + len, 0, rec_padded(len) - len);
		used += sizeof(hdr) + rec_padded(len);
		at += len;
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t stream[MAX_STREAM];
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	size_t len = frame(data, size, stream);
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
