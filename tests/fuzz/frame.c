#include "frame.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "stream/record.h"
#include "transport/chan.h"

#define BAD_SUM 0x40000000u

size_t frame_records(const uint8_t *data, size_t size, uint8_t *out)
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
		if (used + sizeof(hdr) + rec_padded(len) > FRAME_MAX)
			break;
		memcpy(out + used, &hdr, sizeof(hdr));
		memcpy(out + used + sizeof(hdr), data + at, len);
		memset(out + used + sizeof(hdr) + len, 0, rec_padded(len) - len);
		used += sizeof(hdr) + rec_padded(len);
		at += len;
	}
	return used;
}

int frame_chan(const void *prefix, size_t plen, const uint8_t *data, size_t size, struct chan *c)
{
	static uint8_t stream[FRAME_MAX + 64];
	size_t len;
	int sv[2];

	if (plen > 64 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	if (plen)
		memcpy(stream, prefix, plen);
	len = plen + frame_records(data, size, stream + plen);
	if (write(sv[0], stream, len) != (ssize_t)len)
		abort();
	close(sv[0]); /* what was written stays to be read, then the end */
	chan_init_fd(c, sv[1]);
	return 0;
}
