/* Fuzz target: a PAGES or LPAGES record read from a socket straight into
 * guest memory (migration/recv/apply.h, page_writer_recv): its head checked
 * first, raw pages read into place and hashed as they land. The input is a
 * selector byte (bit 0: a wrong checksum; bit 1: LPAGES, whose checksum
 * covers its head only) and the body, which goes out with a header as the
 * source makes it. A malformed body or a bad checksum is a clean error;
 * nothing is written past guest memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/recv/apply.h"
#include "stream/format.h"
#include "stream/record.h"
#include "util/bitmap.h"

#define MEM	 (16ull << 20)
#define MAX_BODY (96u << 10) /* what a socket pair holds without a reader */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An LPAGES checksum as the source computes it: over the head only. */
static void checksum_head(struct rec_header *hdr, const uint8_t *body)
{
	struct hash_state st;

	rec_checksum_begin(hdr, &st);
	hash_update(&st, body, rec_checksum_covers(hdr->type, body, hdr->length));
	hdr->checksum = hash_end(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static struct page_writer w;
	static struct wire_buf buf;
	static uint64_t written[BITMAP_WORDS(MEM / 4096)], damaged[BITMAP_WORDS(MEM / 4096)];
	static const uint8_t zeros[8];
	struct rec_header hdr, got;
	struct iovec body;
	uint32_t round = 0;
	struct chan c;
	int sv[2];

	if (!w.scratch && (mem_create(&mem, MEM, MEM_ANON) < 0 ||
			   page_writer_init(&w, &mem, written, damaged) < 0))
		abort();
	if (size < 1 || size - 1 > MAX_BODY || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	body = (struct iovec){ (void *)(data + 1), size - 1 };
	rec_header_init(&hdr, data[0] & 2 ? REC_LPAGES : REC_PAGES, &body, 1);
	if (hdr.type == REC_LPAGES)
		checksum_head(&hdr, body.iov_base);
	hdr.checksum ^= data[0] & 1;
	if (write(sv[0], &hdr, sizeof(hdr)) != sizeof(hdr) ||
	    write(sv[0], body.iov_base, body.iov_len) != (ssize_t)body.iov_len ||
	    write(sv[0], zeros, rec_padded(hdr.length) - hdr.length) < 0)
		abort();
	shutdown(sv[0], SHUT_WR);
	chan_init_fd(&c, sv[1]);
	c.timeout_ms = 1000;
	if (size >= 9)
		memcpy(&round, data + 5, 4); /* where PAGES and LPAGES keep it */
	if (wire_recv_header(&c, &got, &buf) == 0)
		page_writer_recv(&w, &c, &got, &buf, round);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
