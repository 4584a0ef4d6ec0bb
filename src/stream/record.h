/* Encoding and strict decoding of the migration stream (docs/protocol.md).
 * Pure: buffers in, values out; no I/O. Every function that reads untrusted
 * bytes returns 0 or -EINVAL with a sentence in err_msg(). */
#ifndef FERRY_STREAM_RECORD_H
#define FERRY_STREAM_RECORD_H

#include <stdint.h>
#include <sys/uio.h>

#include "stream/format.h"
#include "util/hash.h"

struct pages_view {
	uint32_t count;
	uint32_t round;
	uint32_t raw;		/* RAW entries */
	uint64_t payload_bytes; /* raw pages and XBZRLE deltas */
	const uint64_t *entries;
	const uint8_t *payload; /* raw pages and deltas, in entry order */
};

/* A ZPAGES record: its page list checked, its frame not yet decompressed
 * (pages.payload is NULL; pages.payload_bytes is what the frame must hold). */
struct zpages_view {
	struct pages_view pages;
	uint32_t codec; /* enum zpages_codec */
	uint32_t frame_len;
	uint64_t payload_hash;
	const uint8_t *frame;
};

struct postcopy_view {
	uint64_t first_gfn;
	uint32_t count;
	uint32_t round;
	const uint64_t *bits; /* count bits, from first_gfn's */
};

struct request_view {
	uint32_t count;
	const uint64_t *gfn;
};

struct hashes_view {
	uint64_t first_gfn;
	uint32_t count;
	const uint64_t *hash;
};

void stream_header_init(struct stream_header *h);
int stream_header_check(const struct stream_header *h);

/* Header for a body made of iov[0..n), with its checksum. */
void rec_header_init(struct rec_header *hdr, uint32_t type, const struct iovec *iov, int n);
/* A header as received: a known type (or an optional one) and a length
 * within that type's bounds. Sets *skip for an unknown optional record. */
int rec_header_check(const struct rec_header *hdr, int *skip);
int rec_checksum_check(const struct rec_header *hdr, const void *body);
/* The first bytes of a body of len that its checksum covers: all, but for
 * LPAGES its head (fixed part, entries, page hashes; the pages carry their
 * own hashes). */
uint32_t rec_checksum_covers(uint32_t type, const void *body, uint32_t len);
/* The same for a body that arrives in pieces: begin, hash_update()
 * with each piece in order, end. */
void rec_checksum_begin(const struct rec_header *hdr, struct hash_state *st);
int rec_checksum_end(const struct rec_header *hdr, struct hash_state *st);
const char *rec_type_name(uint32_t type);

int rec_parse_config(const void *body, uint32_t len, struct rec_config *out);
/* npages: guest pages; every gfn must be below it. */
int rec_parse_pages(const void *body, uint32_t len, uint64_t npages, struct pages_view *out);
/* A PAGES or LPAGES record (type) of len bytes read piece by piece, so
 * that its payload can land where it belongs: first its fixed part (8
 * bytes) gives the count of entries to read next; then the fixed part and
 * entries (head) are checked against len (LPAGES: zero and raw pages only,
 * a hash per raw page after the entries). out->payload is NULL. */
int rec_pages_count(uint32_t type, const struct rec_pages *fixed, uint32_t len, uint32_t *count);
int rec_parse_pages_head(uint32_t type, const void *head, uint32_t len, uint64_t npages,
			 struct pages_view *out);
int rec_parse_zpages(const void *body, uint32_t len, uint64_t npages, struct zpages_view *out);
int rec_parse_channels(const void *body, uint32_t len, struct rec_channels *out);
int rec_parse_session(const void *body, uint32_t len, struct rec_session *out);
int rec_parse_join(const void *body, uint32_t len, struct rec_join *out);
/* chans: room for CHANNELS_MAX entries. */
int rec_parse_received(const void *body, uint32_t len, uint32_t *count,
		       struct rec_received_chan *chans);
int rec_parse_round(const void *body, uint32_t len, struct rec_round *out);
int rec_parse_hashes(const void *body, uint32_t len, uint64_t npages, struct hashes_view *out);
/* Copies the sentence, NUL-terminated, into text (at least ERROR_MAX_TEXT + 1 bytes). */
/* A POSTCOPY record; next_gfn is where the previous one ended (0 first). */
int rec_parse_postcopy(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		       struct postcopy_view *out);
/* RECOVER and FORGET: the same layout as POSTCOPY. */
int rec_parse_recover(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		      struct postcopy_view *out);
int rec_parse_forget(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		     struct postcopy_view *out);
int rec_parse_resume(const void *body, uint32_t len, struct rec_resume *out);
/* A parsed POSTCOPY, RECOVER or FORGET record's bits into bits (a bitmap
 * of every page), over the pages it covers. */
void rec_pending_copy(uint64_t *bits, const struct postcopy_view *v);
int rec_parse_request(const void *body, uint32_t len, uint64_t npages, struct request_view *out);
int rec_parse_placed(const void *body, uint32_t len, struct rec_placed *out);
int rec_parse_error(const void *body, uint32_t len, uint32_t *code, char *text);

#endif
