#include "migration/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/record.h"
#include "util/error.h"

static const uint8_t zeros[8];

static int send_with(struct chan *c, const struct rec_header *hdr, const struct iovec *body, int n,
		     bool by_ref)
{
	struct iovec iov[CHAN_MAX_IOV];
	uint32_t pad = rec_padded(hdr->length) - hdr->length;

	iov[0] = (struct iovec){ (void *)hdr, sizeof(*hdr) };
	if (n)
		memcpy(iov + 1, body, (size_t)n * sizeof(*iov));
	iov[n + 1] = (struct iovec){ (void *)zeros, pad };
	return by_ref ? chan_writev_ref(c, iov, n + 2) : chan_writev(c, iov, n + 2);
}

int wire_send(struct chan *c, uint32_t type, const struct iovec *body, int n)
{
	struct rec_header hdr;

	if (n > CHAN_MAX_IOV - 2)
		return -EINVAL;
	rec_header_init(&hdr, type, body, n);
	return send_with(c, &hdr, body, n, false);
}

/* A record whose checksum the caller computed. */
static int send_checked(struct chan *c, uint32_t type, const struct iovec *body, int n,
			uint64_t checksum, bool by_ref)
{
	struct rec_header hdr = { .type = type, .checksum = checksum };

	if (n > CHAN_MAX_IOV - 2)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		hdr.length += (uint32_t)body[i].iov_len;
	return send_with(c, &hdr, body, n, by_ref);
}

int wire_send_hashed(struct chan *c, uint32_t type, const struct iovec *body, int n,
		     uint64_t checksum)
{
	return send_checked(c, type, body, n, checksum, false);
}

int wire_send_live(struct chan *c, const struct iovec *body, int n, uint64_t checksum)
{
	return send_checked(c, REC_LPAGES, body, n, checksum, true);
}

int wire_send_pending(struct chan *c, uint32_t type, const uint64_t *bits, uint64_t npages,
		      uint32_t round)
{
	int rc = 0;

	for (uint64_t first = 0; first < npages && rc == 0; first += POSTCOPY_MAX_COUNT) {
		uint32_t n = (uint32_t)(npages - first < POSTCOPY_MAX_COUNT ? npages - first
									    : POSTCOPY_MAX_COUNT);
		struct rec_postcopy fixed = { .first_gfn = first, .count = n, .round = round };
		struct iovec body[2] = { { &fixed, sizeof(fixed) },
					 { (void *)(bits + first / 64), 8 * ((n + 63ull) / 64) } };

		rc = wire_send(c, type, body, 2);
	}
	return rc;
}

int wire_send_fd(struct chan *c, uint32_t type, const void *body, uint32_t len, int fd)
{
	struct rec_header hdr;
	struct iovec iov[3] = { { &hdr, sizeof(hdr) },
				{ (void *)body, len },
				{ (void *)zeros, rec_padded(len) - len } };

	rec_header_init(&hdr, type, &iov[1], 1);
	return chan_writev_fd(c, iov, 3, fd);
}

int wire_recv_fd(struct chan *c, struct rec_header *hdr, struct wire_buf *buf, int *fd)
{
	int skip, rc = chan_read_fd(c, hdr, sizeof(*hdr), fd);

	if (rc == 0)
		rc = rec_header_check(hdr, &skip);
	if (rc == 0 && skip)
		rc = err_set(-EPROTO, "an optional record came where a descriptor was due");
	if (rc == 0)
		rc = wire_recv_body(c, hdr, buf);
	if (rc < 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int wire_send_empty(struct chan *c, uint32_t type)
{
	return wire_send(c, type, NULL, 0);
}

int wire_buf_reserve(struct wire_buf *buf, size_t need)
{
	uint8_t *p;

	if (need <= buf->cap)
		return 0;
	p = realloc(buf->data, need);
	if (!p)
		return err_set(-ENOMEM, "out of memory for a %zu-byte record", need);
	buf->data = p;
	buf->cap = need;
	return 0;
}

int wire_recv_body(struct chan *c, const struct rec_header *hdr, struct wire_buf *buf)
{
	int rc = wire_buf_reserve(buf, rec_padded(hdr->length) + 8);

	if (rc == 0)
		rc = chan_read(c, buf->data, rec_padded(hdr->length));
	if (rc == 0)
		rc = rec_checksum_check(hdr, buf->data);
	return rc;
}

int wire_recv_header(struct chan *c, struct rec_header *hdr, struct wire_buf *buf)
{
	for (;;) {
		int skip, rc = chan_read(c, hdr, sizeof(*hdr));

		if (rc == 0)
			rc = rec_header_check(hdr, &skip);
		if (rc < 0 || !skip)
			return rc;
		c->skipped += sizeof(*hdr) + rec_padded(hdr->length);
		if (c->skipped > WIRE_SKIP_MAX)
			return err_set(-EPROTO,
				       "the peer sent more than %u KiB of optional records this "
				       "ferry does not know",
				       WIRE_SKIP_MAX >> 10);
		rc = wire_recv_body(c, hdr, buf); /* skippable records too: the type is checked */
		if (rc < 0)
			return rc;
	}
}

int wire_recv(struct chan *c, struct rec_header *hdr, struct wire_buf *buf)
{
	int rc = wire_recv_header(c, hdr, buf);

	return rc < 0 ? rc : wire_recv_body(c, hdr, buf);
}

void wire_buf_free(struct wire_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->cap = 0;
}
