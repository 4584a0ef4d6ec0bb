/* Records on a channel: framing (header, checksum, padding) over transport/,
 * validation by stream/. */
#ifndef FERRY_MIGRATION_WIRE_H
#define FERRY_MIGRATION_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "stream/format.h"
#include "transport/chan.h"

struct wire_buf {
	uint8_t *data;
	size_t cap;
};

/* Send one record whose body is iov[0..n) (n <= CHAN_MAX_IOV - 2). */
int wire_send(struct chan *c, uint32_t type, const struct iovec *body, int n);
int wire_send_empty(struct chan *c, uint32_t type);
/* A bitmap of npages pages (set: still to come, in round), as POSTCOPY or
 * RECOVER records (type) of POSTCOPY_MAX_COUNT pages at most. */
int wire_send_pending(struct chan *c, uint32_t type, const uint64_t *bits, uint64_t npages,
		      uint32_t round);
/* The same with the checksum computed already (rec_checksum_begin over
 * the same bytes). */
int wire_send_hashed(struct chan *c, uint32_t type, const struct iovec *body, int n,
		     uint64_t checksum);
/* An LPAGES record (checksum as above): its pages may go by reference
 * (chan_writev_ref), so the peer may find them changed, which LPAGES
 * allows for. */
int wire_send_live(struct chan *c, const struct iovec *body, int n, uint64_t checksum);
/* A record of len bytes of body, with fd going along (chan_writev_fd). */
int wire_send_fd(struct chan *c, uint32_t type, const void *body, uint32_t len, int fd);
/* The next record, which must carry a descriptor: into *fd (-1 on failure). */
int wire_recv_fd(struct chan *c, struct rec_header *hdr, struct wire_buf *buf, int *fd);
/* Optional records a reader skips, in bytes a channel: a peer may not keep
 * one busy with records it ignores. */
#define WIRE_SKIP_MAX (1u << 20)

/* Receive the next record the reader knows (skipping optional unknown ones,
 * WIRE_SKIP_MAX bytes of them at most), checked: header, length bounds and
 * checksum. The body lands in buf. */
int wire_recv(struct chan *c, struct rec_header *hdr, struct wire_buf *buf);
/* The same in two steps, for a reader that puts some bodies elsewhere: the
 * next known record's header (checked), then its body into buf (checked). */
int wire_recv_header(struct chan *c, struct rec_header *hdr, struct wire_buf *buf);
int wire_recv_body(struct chan *c, const struct rec_header *hdr, struct wire_buf *buf);
/* Room for at least bytes in buf. */
int wire_buf_reserve(struct wire_buf *buf, size_t bytes);
void wire_buf_free(struct wire_buf *buf);

#endif
