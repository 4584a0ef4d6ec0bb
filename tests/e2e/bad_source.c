/* A source that misbehaves on purpose, for the destination's fault tests:
 *   bad_source MODE URI
 * MODE: corrupt (a PAGES record with a wrong checksum), truncate (half a
 * record, then hang up), garbage (not a ferry stream), bad-gfn (a page past
 * guest memory), no-state (END without the VM state), bad-hash (a complete,
 * loadable stream whose page hashes do not match: give a 2-vCPU state blob
 * as a third argument), commit-and-vanish (a loadable stream, COMMIT, then
 * gone before RESUMED; same blob). Exits 0 when the destination answered
 * the way it must: an ERROR naming the fault, LOADED (commit-and-vanish), or
 * (for truncate) nothing. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migration/wire.h"
#include "stream/record.h"
#include "util/error.h"

#include <xxhash.h>

#define MEM (64ull << 20)

static int handshake(struct chan *c, bool verify, uint32_t vcpus)
{
	struct stream_header h;
	struct rec_config cfg = { .mem_bytes = MEM,
				  .vcpus = vcpus,
				  .page_size = STREAM_PAGE_SIZE,
				  .flags = verify ? CONFIG_VERIFY : 0 };
	struct iovec hv = { &h, sizeof(h) }, cv = { &cfg, sizeof(cfg) };
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	int rc;

	stream_header_init(&h);
	rc = chan_writev(c, &hv, 1);
	if (rc == 0)
		rc = wire_send(c, REC_CONFIG, &cv, 1);
	if (rc == 0)
		rc = wire_recv(c, &hdr, &buf);
	if (rc == 0 && hdr.type != REC_READY)
		rc = -1;
	wire_buf_free(&buf);
	return rc;
}

/* One PAGES record of one raw page at gfn, as bytes, so it can be damaged. */
static size_t pages_record(uint8_t *out, uint64_t gfn)
{
	static uint8_t page[STREAM_PAGE_SIZE];
	struct rec_pages fixed = { .count = 1 };
	uint64_t entry = PAGE_ENTRY(gfn, PAGE_RAW);
	struct iovec body[3] = { { &fixed, 8 }, { &entry, 8 }, { page, sizeof(page) } };
	struct rec_header hdr;

	memset(page, 0xab, sizeof(page));
	rec_header_init(&hdr, REC_PAGES, body, 3);
	memcpy(out, &hdr, 16);
	memcpy(out + 16, &fixed, 8);
	memcpy(out + 24, &entry, 8);
	memcpy(out + 32, page, sizeof(page));
	return 32 + sizeof(page);
}

static size_t load_blob(const char *path, uint8_t *blob, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t len = f ? fread(blob, 1, cap, f) : 0;

	if (f)
		fclose(f);
	return len;
}

/* A loadable stream (zero memory, a real state), COMMIT, and away. */
static int commit_and_vanish(struct chan *c, const char *blob_path)
{
	static uint8_t blob[1 << 20];
	struct iovec state = { blob, load_blob(blob_path, blob, sizeof(blob)) };
	struct wire_buf buf = { 0 };
	struct rec_header hdr;

	int rc = !state.iov_len || wire_send(c, REC_STATE, &state, 1) < 0 ||
		 wire_send_empty(c, REC_END) < 0 || wire_recv(c, &hdr, &buf) < 0 ||
		 hdr.type != REC_LOADED || wire_send_empty(c, REC_COMMIT) < 0;

	wire_buf_free(&buf);
	chan_close(c);
	return rc;
}

/* A whole migration of a zeroed 2-vCPU guest, with one wrong page hash. */
static int send_bad_hash(struct chan *c, const char *blob_path)
{
	static uint8_t blob[1 << 20];
	static uint64_t hash[MEM / STREAM_PAGE_SIZE];
	static const uint8_t zero_page[STREAM_PAGE_SIZE];
	struct rec_hashes fixed = { .first_gfn = 0, .count = MEM / STREAM_PAGE_SIZE };
	size_t len = load_blob(blob_path, blob, sizeof(blob));
	struct iovec state = { blob, len },
		     hv[2] = { { &fixed, sizeof(fixed) }, { hash, sizeof(hash) } };

	for (size_t i = 0; i < MEM / STREAM_PAGE_SIZE; i++)
		hash[i] = XXH3_64bits(zero_page, sizeof(zero_page));
	hash[7] ^= 1;
	hash[9] ^= 1;
	if (!len || wire_send(c, REC_STATE, &state, 1) < 0 || wire_send(c, REC_HASHES, hv, 2) < 0 ||
	    wire_send_empty(c, REC_END) < 0)
		return -1;
	return 0;
}

static int expect_error(struct chan *c, const char *words)
{
	struct wire_buf buf = { 0 };
	struct rec_header hdr;
	char text[ERROR_MAX_TEXT + 1] = "";
	uint32_t code;
	int rc = wire_recv(c, &hdr, &buf);

	if (rc == 0 && hdr.type == REC_ERROR)
		rc = rec_parse_error(buf.data, hdr.length, &code, text);
	else if (rc == 0)
		rc = -1;
	wire_buf_free(&buf);
	printf("destination said: %s\n", rc == 0 ? text : "(nothing)");
	return rc == 0 && strstr(text, words) ? 0 : 1;
}

/* Modes that load a real 2-vCPU state blob. */
static bool blob_mode(const char *mode)
{
	return !strcmp(mode, "bad-hash") || !strcmp(mode, "commit-and-vanish");
}

int main(int argc, char **argv)
{
	static uint8_t rec[64 + STREAM_PAGE_SIZE];
	struct chan c;
	struct iovec iov;
	size_t len;

	if (argc < 3 || chan_connect(&c, argv[2]) < 0) {
		fprintf(stderr, "usage: bad_source MODE URI (%s)\n", err_msg());
		return 2;
	}
	if (!strcmp(argv[1], "garbage")) {
		iov = (struct iovec){ "GET / HTTP/1.0\r\n\r\n", 18 };
		chan_writev(&c, &iov, 1);
		return expect_error(&c, "not sending a ferry migration stream");
	}
	if (handshake(&c, !strcmp(argv[1], "bad-hash"), blob_mode(argv[1]) ? 2 : 1) < 0) {
		fprintf(stderr, "bad_source: no READY from the destination\n");
		return 1;
	}
	if (!strcmp(argv[1], "bad-hash")) {
		if (argc < 4 || send_bad_hash(&c, argv[3]) < 0)
			return 2;
		return expect_error(&c, "2 pages differ from the source's (at 0x7000, 0x9000)");
	}
	if (!strcmp(argv[1], "commit-and-vanish"))
		return argc < 4 ? 2 : commit_and_vanish(&c, argv[3]);
	if (!strcmp(argv[1], "no-state")) {
		wire_send_empty(&c, REC_END);
		return expect_error(&c, "without the VM state");
	}
	len = pages_record(rec, !strcmp(argv[1], "bad-gfn") ? MEM / STREAM_PAGE_SIZE : 5);
	if (!strcmp(argv[1], "corrupt"))
		rec[40] ^= 0x01; /* a payload byte: the checksum no longer matches */
	iov = (struct iovec){ rec, !strcmp(argv[1], "truncate") ? len / 2 : len };
	chan_writev(&c, &iov, 1);
	if (!strcmp(argv[1], "truncate")) {
		chan_close(&c);
		return 0;
	}
	return expect_error(&c, !strcmp(argv[1], "corrupt") ? "checksum" : "beyond guest memory");
}
