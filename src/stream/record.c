#include "stream/record.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util/error.h"
#include "util/hash.h"

static const char *const names[] = {
	[REC_CONFIG] = "CONFIG", [REC_PAGES] = "PAGES",		[REC_ROUND] = "ROUND",
	[REC_STATE] = "STATE",	 [REC_HASHES] = "HASHES",	[REC_END] = "END",
	[REC_COMMIT] = "COMMIT", [REC_LOADED] = "LOADED",	[REC_RESUMED] = "RESUMED",
	[REC_ERROR] = "ERROR",	 [REC_READY] = "READY",		[REC_CHANNELS] = "CHANNELS",
	[REC_JOIN] = "JOIN",	 [REC_ZPAGES] = "ZPAGES",	[REC_SESSION] = "SESSION",
	[REC_LPAGES] = "LPAGES", [REC_POSTCOPY] = "POSTCOPY",	[REC_REQUEST] = "REQUEST",
	[REC_PLACED] = "PLACED", [REC_RESUME] = "RESUME",	[REC_RECOVER] = "RECOVER",
	[REC_FORGET] = "FORGET", [REC_FORGOTTEN] = "FORGOTTEN", [REC_MEMFD] = "MEMFD",
};

const char *rec_type_name(uint32_t type)
{
	if (type == REC_RECEIVED)
		return "RECEIVED";
	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "unknown";
}

void stream_header_init(struct stream_header *h)
{
	*h = (struct stream_header){ .magic = STREAM_MAGIC,
				     .version = STREAM_VERSION,
				     .byte_order = STREAM_BYTE_ORDER };
}

int stream_header_check(const struct stream_header *h)
{
	if (h->magic != STREAM_MAGIC)
		return err_set(-EINVAL, "the peer is not sending a ferry migration stream");
	if (h->byte_order != STREAM_BYTE_ORDER)
		return err_set(-EINVAL, "the migration stream has the wrong byte order");
	if (h->version != STREAM_VERSION)
		return err_set(
			-EINVAL,
			"migration stream version %u is not supported (this ferry speaks %u)",
			h->version, STREAM_VERSION);
	return 0;
}

/* The checksum covers the type and the length as well as the body: they
 * seed the hash, so a flipped bit in either (say, the optional bit, which
 * would have a receiver skip a page batch) fails the check too. */
static uint64_t header_seed(uint32_t type, uint32_t length)
{
	return (uint64_t)type << 32 | length;
}

void rec_header_init(struct rec_header *hdr, uint32_t type, const struct iovec *iov, int n)
{
	struct hash_state st;
	uint64_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	hash_begin(&st, header_seed(type, (uint32_t)len));
	for (int i = 0; i < n; i++)
		hash_update(&st, iov[i].iov_base, iov[i].iov_len);
	*hdr = (struct rec_header){ .type = type,
				    .length = (uint32_t)len,
				    .checksum = hash_end(&st) };
}

/* Smallest and largest body each type may have. */
static int length_bounds(uint32_t type, uint32_t *min, uint32_t *max)
{
	switch (type) {
	case REC_CONFIG:
		*min = *max = sizeof(struct rec_config);
		return 0;
	case REC_PAGES:
		*min = sizeof(struct rec_pages) + 8;
		*max = sizeof(struct rec_pages) + PAGES_MAX_COUNT * (8 + FERRY_PAGE_SIZE);
		return 0;
	case REC_ZPAGES: /* never larger than the same pages uncompressed */
		*min = sizeof(struct rec_zpages) + 8 + 1;
		*max = sizeof(struct rec_zpages) + PAGES_MAX_COUNT * (8 + FERRY_PAGE_SIZE);
		return 0;
	case REC_LPAGES: /* PAGES with a hash per raw page */
		*min = sizeof(struct rec_pages) + 8;
		*max = sizeof(struct rec_pages) + PAGES_MAX_COUNT * (8 + 8 + FERRY_PAGE_SIZE);
		return 0;
	case REC_ROUND:
		*min = *max = sizeof(struct rec_round);
		return 0;
	case REC_CHANNELS:
		*min = *max = sizeof(struct rec_channels);
		return 0;
	case REC_SESSION:
		*min = *max = sizeof(struct rec_session);
		return 0;
	case REC_JOIN:
		*min = *max = sizeof(struct rec_join);
		return 0;
	case REC_RECEIVED:
		*min = 8;
		*max = 8 + CHANNELS_MAX * sizeof(struct rec_received_chan);
		return 0;
	case REC_STATE:
		*min = 1;
		*max = STATE_MAX_BODY;
		return 0;
	case REC_HASHES:
		*min = sizeof(struct rec_hashes) + 8;
		*max = sizeof(struct rec_hashes) + HASHES_MAX_COUNT * 8;
		return 0;
	case REC_POSTCOPY:
	case REC_RECOVER:
	case REC_FORGET:
		*min = sizeof(struct rec_postcopy) + 8;
		*max = sizeof(struct rec_postcopy) + POSTCOPY_MAX_COUNT / 8;
		return 0;
	case REC_REQUEST:
		*min = sizeof(struct rec_request) + 8;
		*max = sizeof(struct rec_request) + REQUEST_MAX_COUNT * 8;
		return 0;
	case REC_PLACED:
		*min = offsetof(struct rec_placed, blocked_ns);
		*max = sizeof(struct rec_placed);
		return 0;
	case REC_RESUME:
		*min = *max = sizeof(struct rec_resume);
		return 0;
	case REC_READY:
		*min = *max = sizeof(struct rec_ready);
		return 0;
	case REC_MEMFD:
		*min = *max = sizeof(struct rec_memfd);
		return 0;
	case REC_END:
	case REC_COMMIT:
	case REC_LOADED:
	case REC_RESUMED:
	case REC_FORGOTTEN:
		*min = *max = 0;
		return 0;
	case REC_ERROR:
		*min = sizeof(struct rec_error);
		*max = sizeof(struct rec_error) + ERROR_MAX_TEXT;
		return 0;
	}
	return -1;
}

int rec_header_check(const struct rec_header *hdr, int *skip)
{
	uint32_t min, max;

	*skip = 0;
	if (length_bounds(hdr->type, &min, &max) < 0) {
		if (!(hdr->type & REC_OPTIONAL))
			return err_set(-EINVAL,
				       "the migration stream has a record of unknown type %#x",
				       hdr->type);
		if (hdr->length > REC_MAX_BODY)
			return err_set(-EINVAL, "optional record %#x claims %u bytes", hdr->type,
				       hdr->length);
		*skip = 1;
		return 0;
	}
	if (hdr->length < min || hdr->length > max)
		return err_set(-EINVAL, "%s record has a bad length (%u bytes)",
			       rec_type_name(hdr->type), hdr->length);
	return 0;
}

static int checksum_failed(const struct rec_header *hdr)
{
	return err_set(-EINVAL,
		       "%s record failed its checksum: the stream was corrupted in transit",
		       rec_type_name(hdr->type));
}

uint32_t rec_checksum_covers(uint32_t type, const void *body, uint32_t len)
{
	const uint8_t *entry = (const uint8_t *)body + sizeof(struct rec_pages);
	uint32_t count = 0, i;
	uint64_t raw = 0, head;

	if (type != REC_LPAGES || len < sizeof(struct rec_pages))
		return len;
	memcpy(&count, body, sizeof(count));
	for (i = 0; i < count && sizeof(struct rec_pages) + 8ull * (i + 1) <= len; i++) {
		uint64_t e;

		memcpy(&e, entry + 8ull * i, 8);
		raw += PAGE_ENTRY_ENC(e) == PAGE_RAW;
	}
	head = sizeof(struct rec_pages) + 8ull * i + 8 * raw;
	return head < len ? (uint32_t)head : len;
}

int rec_checksum_check(const struct rec_header *hdr, const void *body)
{
	uint32_t covered = rec_checksum_covers(hdr->type, body, hdr->length);

	if (hash64_seed(body, covered, header_seed(hdr->type, hdr->length)) != hdr->checksum)
		return checksum_failed(hdr);
	return 0;
}

void rec_checksum_begin(const struct rec_header *hdr, struct hash_state *st)
{
	hash_begin(st, header_seed(hdr->type, hdr->length));
}

int rec_checksum_end(const struct rec_header *hdr, struct hash_state *st)
{
	return hash_end(st) == hdr->checksum ? 0 : checksum_failed(hdr);
}

int rec_parse_config(const void *body, uint32_t len, struct rec_config *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "CONFIG record has a bad length");
	memcpy(out, body, sizeof(*out));
	if (out->page_size != FERRY_PAGE_SIZE)
		return err_set(-EINVAL, "source uses %u-byte pages, ferry uses %llu",
			       out->page_size, FERRY_PAGE_SIZE);
	if (out->vcpus < 1 || out->vcpus > 64)
		return err_set(-EINVAL, "CONFIG asks for %u vCPUs", out->vcpus);
	if (out->mem_bytes < (16ull << 20) || out->mem_bytes % (2ull << 20) ||
	    out->mem_bytes > (1ull << 40))
		return err_set(-EINVAL, "CONFIG asks for %llu bytes of guest memory",
			       (unsigned long long)out->mem_bytes);
	if (out->flags & ~(CONFIG_VERIFY | CONFIG_CHANNELS | CONFIG_POSTCOPY | CONFIG_LOCAL))
		return err_set(-EINVAL, "CONFIG has unknown flags %#llx",
			       (unsigned long long)out->flags);
	return 0;
}

/* Check a batch's page list (shared by PAGES and ZPAGES); sums what its
 * payload must hold. */
static int check_entries(const char *what, const uint64_t *entries, uint32_t count, uint64_t npages,
			 struct pages_view *out)
{
	out->raw = 0;
	out->payload_bytes = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t e = entries[i];
		uint32_t enc = PAGE_ENTRY_ENC(e), size = PAGE_ENTRY_SIZE(e);

		if (PAGE_ENTRY_GFN(e) >= npages)
			return err_set(-EINVAL,
				       "%s record names page %llu beyond guest memory (%llu pages)",
				       what, (unsigned long long)PAGE_ENTRY_GFN(e),
				       (unsigned long long)npages);
		if (enc > PAGE_XBZRLE)
			return err_set(-EINVAL, "%s record uses unknown page encoding %u", what,
				       enc);
		if (enc == PAGE_XBZRLE ? size >= FERRY_PAGE_SIZE : size != 0)
			return err_set(-EINVAL,
				       "%s record has a bad payload length %u for page %llu", what,
				       size, (unsigned long long)PAGE_ENTRY_GFN(e));
		out->raw += enc == PAGE_RAW;
		out->payload_bytes += enc == PAGE_RAW ? FERRY_PAGE_SIZE : size;
	}
	return 0;
}

/* The count and page list after a fixed part of fixed bytes. */
static int page_list(const char *what, const void *body, uint32_t len, size_t fixed, uint32_t count,
		     uint32_t round, uint64_t npages, struct pages_view *out)
{
	if (count < 1 || count > PAGES_MAX_COUNT)
		return err_set(-EINVAL, "%s record has %u pages (1 to %u allowed)", what, count,
			       PAGES_MAX_COUNT);
	if (len < fixed + 8ull * count)
		return err_set(-EINVAL, "%s record is shorter than its page list", what);
	out->count = count;
	out->round = round;
	out->entries = (const uint64_t *)((const uint8_t *)body + fixed);
	return check_entries(what, out->entries, count, npages, out);
}

int rec_parse_pages(const void *body, uint32_t len, uint64_t npages, struct pages_view *out)
{
	int rc;

	if (len < sizeof(struct rec_pages))
		return err_set(-EINVAL, "PAGES record is truncated");
	rc = rec_parse_pages_head(REC_PAGES, body, len, npages, out);
	if (rc == 0)
		out->payload = (const uint8_t *)out->entries + 8ull * out->count;
	return rc;
}

int rec_pages_count(uint32_t type, const struct rec_pages *fixed, uint32_t len, uint32_t *count)
{
	if (fixed->count < 1 || fixed->count > PAGES_MAX_COUNT)
		return err_set(-EINVAL, "%s record has %u pages (1 to %u allowed)",
			       rec_type_name(type), fixed->count, PAGES_MAX_COUNT);
	if (len < sizeof(*fixed) + 8ull * fixed->count)
		return err_set(-EINVAL, "%s record is shorter than its page list",
			       rec_type_name(type));
	*count = fixed->count;
	return 0;
}

/* The length a PAGES or LPAGES record with this list must have. */
static uint64_t pages_length(uint32_t type, const struct pages_view *v)
{
	uint64_t hashes = type == REC_LPAGES ? 8ull * v->raw : 0;

	return sizeof(struct rec_pages) + 8ull * v->count + hashes + v->payload_bytes;
}

int rec_parse_pages_head(uint32_t type, const void *head, uint32_t len, uint64_t npages,
			 struct pages_view *out)
{
	const char *what = rec_type_name(type);
	struct rec_pages fixed;
	int rc;

	memcpy(&fixed, head, sizeof(fixed));
	rc = page_list(what, head, len, sizeof(fixed), fixed.count, fixed.round, npages, out);
	if (rc < 0)
		return rc;
	if (type == REC_LPAGES && out->payload_bytes != (uint64_t)out->raw * FERRY_PAGE_SIZE)
		return err_set(-EINVAL, "LPAGES record carries an XBZRLE delta");
	if (len != pages_length(type, out))
		return err_set(-EINVAL, "%s record is %u bytes, its list says %llu", what, len,
			       (unsigned long long)pages_length(type, out));
	out->payload = NULL;
	return 0;
}

int rec_parse_zpages(const void *body, uint32_t len, uint64_t npages, struct zpages_view *out)
{
	struct rec_zpages fixed;
	uint64_t head;
	int rc;

	if (len < sizeof(fixed))
		return err_set(-EINVAL, "ZPAGES record is truncated");
	memcpy(&fixed, body, sizeof(fixed));
	if (fixed.codec != ZPAGES_LZ4 && fixed.codec != ZPAGES_ZSTD)
		return err_set(-EINVAL, "ZPAGES record uses unknown codec %u", fixed.codec);
	rc = page_list("ZPAGES", body, len, sizeof(fixed), fixed.count, fixed.round, npages,
		       &out->pages);
	if (rc < 0)
		return rc;
	if (out->pages.payload_bytes == 0 || fixed.payload_len != out->pages.payload_bytes)
		return err_set(-EINVAL, "ZPAGES record's payload is %u bytes, its list says %llu",
			       fixed.payload_len, (unsigned long long)out->pages.payload_bytes);
	head = sizeof(fixed) + 8ull * fixed.count;
	if (len <= head)
		return err_set(-EINVAL, "ZPAGES record has no compressed frame");
	out->codec = fixed.codec;
	out->payload_hash = fixed.payload_hash;
	out->frame = (const uint8_t *)body + head;
	out->frame_len = len - (uint32_t)head;
	out->pages.payload = NULL; /* until decompressed */
	return 0;
}

int rec_parse_channels(const void *body, uint32_t len, struct rec_channels *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "CHANNELS record has a bad length");
	memcpy(out, body, sizeof(*out));
	if (out->count > CHANNELS_MAX)
		return err_set(-EINVAL, "CHANNELS asks for %u data channels (0 to %u allowed)",
			       out->count, CHANNELS_MAX);
	return 0;
}

int rec_parse_session(const void *body, uint32_t len, struct rec_session *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "SESSION record has a bad length");
	memcpy(out, body, sizeof(*out));
	if (!out->id)
		return err_set(-EINVAL, "SESSION record has no migration id");
	return 0;
}

int rec_parse_join(const void *body, uint32_t len, struct rec_join *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "JOIN record has a bad length");
	memcpy(out, body, sizeof(*out));
	return 0;
}

int rec_parse_received(const void *body, uint32_t len, uint32_t *count,
		       struct rec_received_chan *chans)
{
	uint32_t n;

	if (len < 8)
		return err_set(-EINVAL, "RECEIVED record is truncated");
	memcpy(&n, body, 4);
	if (n > CHANNELS_MAX || len != 8 + n * sizeof(*chans))
		return err_set(-EINVAL, "RECEIVED record's count (%u) does not match its length",
			       n);
	memcpy(chans, (const uint8_t *)body + 8, n * sizeof(*chans));
	*count = n;
	return 0;
}

int rec_parse_round(const void *body, uint32_t len, struct rec_round *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "ROUND record has a bad length");
	memcpy(out, body, sizeof(*out));
	return 0;
}

int rec_parse_hashes(const void *body, uint32_t len, uint64_t npages, struct hashes_view *out)
{
	struct rec_hashes fixed;

	if (len < sizeof(fixed))
		return err_set(-EINVAL, "HASHES record is truncated");
	memcpy(&fixed, body, sizeof(fixed));
	if (fixed.count < 1 || fixed.count > HASHES_MAX_COUNT ||
	    len != sizeof(fixed) + 8ull * fixed.count)
		return err_set(-EINVAL, "HASHES record's count (%u) does not match its length",
			       fixed.count);
	if (fixed.first_gfn >= npages || fixed.count > npages - fixed.first_gfn)
		return err_set(-EINVAL, "HASHES record covers pages beyond guest memory");
	out->first_gfn = fixed.first_gfn;
	out->count = fixed.count;
	out->hash = (const uint64_t *)((const uint8_t *)body + sizeof(fixed));
	return 0;
}

/* POSTCOPY and RECOVER: which pages are still to come, name names the type. */
static int parse_pending(const char *name, const void *body, uint32_t len, uint64_t npages,
			 uint64_t next_gfn, struct postcopy_view *out)
{
	struct rec_postcopy fixed;
	uint64_t words;

	if (len < sizeof(fixed))
		return err_set(-EINVAL, "%s record is truncated", name);
	memcpy(&fixed, body, sizeof(fixed));
	words = (fixed.count + 63ull) / 64;
	if (fixed.count < 1 || fixed.count > POSTCOPY_MAX_COUNT || len != sizeof(fixed) + 8 * words)
		return err_set(-EINVAL, "%s record's count (%u) does not match its length", name,
			       fixed.count);
	if (fixed.first_gfn != next_gfn)
		return err_set(-EINVAL, "%s record starts at page %llu, not at %llu", name,
			       (unsigned long long)fixed.first_gfn, (unsigned long long)next_gfn);
	if (fixed.count > npages - fixed.first_gfn ||
	    (fixed.count % 64 && fixed.first_gfn + fixed.count != npages))
		return err_set(-EINVAL, "%s record covers pages beyond guest memory", name);
	out->first_gfn = fixed.first_gfn;
	out->count = fixed.count;
	out->round = fixed.round;
	out->bits = (const uint64_t *)((const uint8_t *)body + sizeof(fixed));
	if (fixed.count % 64 && out->bits[words - 1] >> (fixed.count % 64))
		return err_set(-EINVAL, "%s record names pages beyond guest memory", name);
	return 0;
}

int rec_parse_postcopy(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		       struct postcopy_view *out)
{
	return parse_pending("POSTCOPY", body, len, npages, next_gfn, out);
}

int rec_parse_recover(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		      struct postcopy_view *out)
{
	return parse_pending("RECOVER", body, len, npages, next_gfn, out);
}

int rec_parse_forget(const void *body, uint32_t len, uint64_t npages, uint64_t next_gfn,
		     struct postcopy_view *out)
{
	return parse_pending("FORGET", body, len, npages, next_gfn, out);
}

void rec_pending_copy(uint64_t *bits, const struct postcopy_view *v)
{
	memcpy(bits + v->first_gfn / 64, v->bits, 8 * ((v->count + 63ull) / 64));
}

int rec_parse_resume(const void *body, uint32_t len, struct rec_resume *out)
{
	if (len != sizeof(*out))
		return err_set(-EINVAL, "RESUME record has a bad length");
	memcpy(out, body, sizeof(*out));
	return out->id ? 0 : err_set(-EINVAL, "RESUME record names no migration (id 0)");
}

int rec_parse_request(const void *body, uint32_t len, uint64_t npages, struct request_view *out)
{
	struct rec_request fixed;

	if (len < sizeof(fixed))
		return err_set(-EINVAL, "REQUEST record is truncated");
	memcpy(&fixed, body, sizeof(fixed));
	if (fixed.count < 1 || fixed.count > REQUEST_MAX_COUNT ||
	    len != sizeof(fixed) + 8ull * fixed.count)
		return err_set(-EINVAL, "REQUEST record's count (%u) does not match its length",
			       fixed.count);
	out->count = fixed.count;
	out->gfn = (const uint64_t *)((const uint8_t *)body + sizeof(fixed));
	for (uint32_t i = 0; i < fixed.count; i++)
		if (out->gfn[i] >= npages)
			return err_set(-EINVAL,
				       "REQUEST record asks for page %llu, beyond guest memory",
				       (unsigned long long)out->gfn[i]);
	return 0;
}

int rec_parse_placed(const void *body, uint32_t len, struct rec_placed *out)
{
	size_t head = offsetof(struct rec_placed, blocked_ns);

	memset(out, 0, sizeof(*out));
	if (len < head)
		return err_set(-EINVAL, "PLACED record is truncated");
	memcpy(out, body, head);
	if (out->vcpus > PLACED_MAX_VCPUS || len != head + 8ull * out->vcpus)
		return err_set(-EINVAL, "PLACED record's vCPU count (%u) does not match its length",
			       out->vcpus);
	memcpy(out->blocked_ns, (const uint8_t *)body + head, 8ull * out->vcpus);
	return 0;
}

int rec_parse_error(const void *body, uint32_t len, uint32_t *code, char *text)
{
	struct rec_error fixed;
	uint32_t n;

	if (len < sizeof(fixed) || len > sizeof(fixed) + ERROR_MAX_TEXT)
		return err_set(-EINVAL, "ERROR record has a bad length");
	memcpy(&fixed, body, sizeof(fixed));
	n = len - (uint32_t)sizeof(fixed);
	memcpy(text, (const uint8_t *)body + sizeof(fixed), n);
	text[n] = '\0';
	for (uint32_t i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20)
			text[i] = ' '; /* the sentence goes to logs and terminals */
	*code = fixed.code;
	return 0;
}
