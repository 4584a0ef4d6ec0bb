/* A source that misbehaves on purpose, for the destination's fault tests:
 *   bad_source MODE URI
 * MODE: corrupt (a PAGES record with a wrong checksum), truncate (half a
 * record, then hang up), garbage (not a ferry stream), bad-gfn (a page past
 * guest memory), no-state (END without the VM state), bad-hash (a complete,
 * loadable stream whose page hashes do not match: give a 2-vCPU state blob
 * as a third argument), commit-and-vanish (a loadable stream, COMMIT, then
 * gone before RESUMED; same blob), intruder (announces one data channel;
 * a connection with a wrong token comes first and must be turned away, the
 * right one is let in; its first batch is of a round not yet begun),
 * skip-bit (a page batch whose type has the optional bit flipped, which
 * a receiver would skip if the checksum did not cover the type),
 * short-round (one page, then a ROUND that announces two); and local
 * migrations (MEMFD): local-unsealed (memory that may shrink), local-no-fd
 * (MEMFD without its descriptor), local-pages (a PAGES record after it),
 * local-bad-hash (memory full of 0x5a, a real state, two wrong hashes:
 * the destination must refuse and must not have written a byte of it); and
 * peers that would hold the destination or make it allocate: huge (CONFIG
 * declares 512 GiB), trickle (the stream's first bytes, one every half
 * second), skip-flood (1.25 MiB of optional records nobody knows), flood
 * (page batches for ever, never END); and intruder-tls ROOT (as intruder,
 * but over TLS with the credentials in ROOT/x509, the intruder presenting
 * ROOT/x509-other's: another source's identity, with the right token).
 * Exits 0 when the destination answered the way it must: an ERROR naming
 * the fault, LOADED (commit-and-vanish), or (for truncate) nothing.
 *   bad_source state-blob FILE
 * writes the state of a fresh 2-vCPU VM of this host's KVM to FILE, the blob
 * the modes above send (its MSRs are the ones this host's KVM takes). */
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration/handshake.h"
#include "migration/wire.h"
#include "stream/record.h"
#include "transport/tls.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/time.h"
#include "vm/state.h"
#include "vm/vm.h"

#define MEM (64ull << 20)

static int handshake(struct chan *c, bool verify, uint32_t vcpus)
{
	struct handshake h = { .config = { .mem_bytes = MEM,
					   .vcpus = vcpus,
					   .page_size = FERRY_PAGE_SIZE,
					   .flags = verify ? CONFIG_VERIFY : 0 },
			       .id = 42 };
	int rc = handshake_send(c, &h);

	return rc == 0 ? handshake_expect_ready(c) : rc;
}

/* One PAGES record of one raw page at gfn, as bytes, so it can be damaged. */
static size_t pages_record(uint8_t *out, uint64_t gfn)
{
	static uint8_t page[FERRY_PAGE_SIZE];
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

/* CONFIG and CHANNELS for one data channel; an intruder (a wrong token, or
 * over TLS another identity: other), then the channel; READY; then a batch
 * of round 1 on it while round 0 is in progress. */
static int intruder(struct chan *c, const char *uri, uint8_t *rec, size_t len,
		    const struct tls_creds *tls, const struct tls_creds *other, struct chan *bad,
		    struct chan *good)
{
	struct handshake h = { .config = { .mem_bytes = MEM,
					   .vcpus = 1,
					   .page_size = FERRY_PAGE_SIZE,
					   .flags = CONFIG_CHANNELS },
			       .id = 43,
			       .channels = { .count = 1, .token = { 7, 7, 7 } } };
	uint8_t wrong[CHANNEL_TOKEN_SIZE] = { 7, 7, 8 };
	struct rec_header hdr;

	if (handshake_send(c, &h) < 0 ||
	    handshake_join(bad, uri, 0, other ? h.channels.token : wrong, 10000, NULL, other) < 0 ||
	    handshake_join(good, uri, 0, h.channels.token, 10000, NULL, tls) < 0 ||
	    handshake_expect_ready(c) < 0) {
		fprintf(stderr, "bad_source: no READY with the right channel: %s\n", err_msg());
		return -1;
	}
	((struct rec_pages *)(rec + 16))->round = 1;
	rec_header_init(&hdr, REC_PAGES, &(struct iovec){ rec + 16, len - 16 },
			1); /* a valid record */
	memcpy(rec, &hdr, sizeof(hdr));
	return chan_writev(good, &(struct iovec){ rec, len }, 1);
}

/* A loadable stream (zero memory, a real state), COMMIT, and away. */
static int commit_and_vanish(struct chan *c, const char *blob_path)
{
	static uint8_t blob[1 << 20];
	struct iovec state = { blob, load_blob(blob_path, blob, sizeof(blob)) };
	struct wire_buf buf = { 0 };
	struct rec_header hdr;

	int rc = !state.iov_len || wire_send(c, REC_STATE, &state, 1) < 0 ||
		 wire_send_empty(c, REC_END) < 0;

	/* The destination's account of its channels comes first (RECEIVED). */
	do
		rc = rc || wire_recv(c, &hdr, &buf) < 0;
	while (!rc && hdr.type == REC_RECEIVED);
	rc = rc || hdr.type != REC_LOADED || wire_send_empty(c, REC_COMMIT) < 0;

	wire_buf_free(&buf);
	chan_close(c);
	return rc;
}

/* A whole migration of a zeroed 2-vCPU guest, with one wrong page hash. */
static int send_bad_hash(struct chan *c, const char *blob_path)
{
	static uint8_t blob[1 << 20];
	static uint64_t hash[MEM / FERRY_PAGE_SIZE];
	static const uint8_t zero_page[FERRY_PAGE_SIZE];
	struct rec_hashes fixed = { .first_gfn = 0, .count = MEM / FERRY_PAGE_SIZE };
	size_t len = load_blob(blob_path, blob, sizeof(blob));
	struct iovec state = { blob, len },
		     hv[2] = { { &fixed, sizeof(fixed) }, { hash, sizeof(hash) } };

	for (size_t i = 0; i < MEM / FERRY_PAGE_SIZE; i++)
		hash[i] = hash64(zero_page, sizeof(zero_page));
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
	printf("destination said: %s\n", rc == 0 ? text : err_msg());
	return rc == 0 && strstr(text, words) ? 0 : 1;
}

/* A sealed memfd of MEM bytes of 0x5a (unsealed if asked), or -1. */
static int pattern_memfd(bool sealed)
{
	int fd = memfd_create("bad-source", MFD_ALLOW_SEALING);
	uint8_t *p;

	if (fd < 0 || ftruncate(fd, MEM) < 0)
		return -1;
	p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	memset(p, 0x5a, MEM);
	munmap(p, MEM);
	if (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return -1;
	return fd;
}

/* Whether every byte of fd is still 0x5a. */
static bool untouched(int fd)
{
	uint8_t *p = mmap(NULL, MEM, PROT_READ, MAP_SHARED, fd, 0);
	bool ok = p != MAP_FAILED;

	for (uint64_t i = 0; ok && i < MEM; i++)
		ok = p[i] == 0x5a;
	if (p != MAP_FAILED)
		munmap(p, MEM);
	return ok;
}

/* The local modes: CONFIG (local), MEMFD, and what the mode says. */
static int local(struct chan *c, const char *mode, const char *blob_path)
{
	static uint8_t blob[1 << 20];
	static uint64_t hash[MEM / FERRY_PAGE_SIZE];
	static uint8_t page[FERRY_PAGE_SIZE];
	struct handshake h = { .config = { .mem_bytes = MEM,
					   .vcpus = 2,
					   .page_size = FERRY_PAGE_SIZE,
					   .flags = CONFIG_LOCAL | CONFIG_VERIFY },
			       .id = 43 };
	struct rec_memfd m = { .mem_bytes = MEM, .backend = 1 /* memfd */ };
	struct rec_hashes fixed = { .first_gfn = 0, .count = MEM / FERRY_PAGE_SIZE };
	struct iovec state = { blob, load_blob(blob_path, blob, sizeof(blob)) },
		     hv[2] = { { &fixed, sizeof(fixed) }, { hash, sizeof(hash) } };
	int fd = pattern_memfd(strcmp(mode, "local-unsealed") != 0), rc;

	if (fd < 0 || !state.iov_len || handshake_send(c, &h) < 0)
		return 2;
	if (!strcmp(mode, "local-no-fd"))
		rc = wire_send(c, REC_MEMFD, &(struct iovec){ &m, sizeof(m) }, 1);
	else
		rc = wire_send_fd(c, REC_MEMFD, &m, sizeof(m), fd);
	if (rc < 0)
		return 2;
	if (!strcmp(mode, "local-no-fd"))
		return expect_error(c, "no file descriptor came");
	if (!strcmp(mode, "local-unsealed"))
		return expect_error(c, "may shrink under its mapping");
	if (handshake_expect_ready(c) < 0)
		return 1;
	if (!strcmp(mode, "local-pages")) {
		static uint8_t rec[64 + FERRY_PAGE_SIZE];
		size_t len = pages_record(rec, 5);

		chan_writev(c, &(struct iovec){ rec, len }, 1);
		return expect_error(c, "PAGES in a local migration");
	}
	memset(page, 0x5a, sizeof(page));
	for (size_t i = 0; i < MEM / FERRY_PAGE_SIZE; i++)
		hash[i] = hash64(page, sizeof(page));
	hash[3] ^= 1;
	hash[4] ^= 1;
	if (wire_send(c, REC_STATE, &state, 1) < 0 || wire_send(c, REC_HASHES, hv, 2) < 0 ||
	    wire_send_empty(c, REC_END) < 0)
		return 2;
	rc = expect_error(c, "2 pages differ from the source's (at 0x3000, 0x4000)");
	if (!untouched(fd)) {
		printf("the destination wrote into the memory it was handed\n");
		return 1;
	}
	return rc;
}

/* Modes that load a real 2-vCPU state blob. */
static bool blob_mode(const char *mode)
{
	return !strcmp(mode, "bad-hash") || !strcmp(mode, "commit-and-vanish");
}

/* The stream's magic, a byte every half second, for up to 30 s or until the
 * destination hangs up. */
static void trickle(struct chan *c)
{
	uint64_t magic = STREAM_MAGIC;

	for (unsigned i = 0; i < 60; i++) {
		if (i < sizeof(magic) &&
		    chan_writev(c, &(struct iovec){ (uint8_t *)&magic + i, 1 }, 1) < 0)
			return;
		if (i >= sizeof(magic) && chan_wait_ready(c, POLLIN) == 0)
			return; /* it spoke */
		usleep(500000);
	}
}

/* Records of an optional type nobody knows, 64 KiB each, 1.25 MiB in all. */
static void skip_flood(struct chan *c)
{
	static uint8_t body[64 << 10];

	for (unsigned i = 0; i < 20; i++)
		if (wire_send(c, REC_OPTIONAL | 0x7ff0, &(struct iovec){ body, sizeof(body) }, 1) <
		    0)
			return;
}

/* The same page batch over and over, for up to 60 s. */
static void flood(struct chan *c, uint8_t *rec)
{
	size_t len = pages_record(rec, 5);

	for (uint64_t end = time_now_ns() + 60 * NS_PER_S; time_now_ns() < end;)
		if (chan_writev(c, &(struct iovec){ rec, len }, 1) < 0)
			return;
}

/* Peers that would hold the destination or make it allocate. */
static int greedy(struct chan *c, const char *mode, uint8_t *rec)
{
	if (!strcmp(mode, "huge")) {
		struct handshake h = { .config = { .mem_bytes = 512ull << 30,
						   .vcpus = 1,
						   .page_size = FERRY_PAGE_SIZE },
				       .id = 44 };

		handshake_send(c, &h);
		return expect_error(c, "more than this host can give");
	}
	if (!strcmp(mode, "trickle")) {
		trickle(c);
		return expect_error(c, "the handshake took longer than its deadline of 2 s");
	}
	if (handshake(c, false, 1) < 0)
		return 1;
	if (!strcmp(mode, "skip-flood")) {
		skip_flood(c);
		return expect_error(c, "optional records this ferry does not know");
	}
	flood(c, rec);
	return expect_error(c, "the migration before COMMIT took longer than its deadline of 3 s");
}

static struct tls_creds *client_creds(const char *root, const char *dir)
{
	char path[512];
	struct tls_creds *t = NULL;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (tls_creds_load(&(struct tls_config){ .dir = path, .hostname = "ferry-dest" },
			   TLS_CLIENT, &t) < 0)
		fprintf(stderr, "bad_source: %s\n", err_msg());
	return t;
}

/* intruder over TLS: the right token under another source's identity. */
static int intruder_tls(struct chan *c, const char *uri, const char *root, uint8_t *rec)
{
	struct tls_creds *tls = client_creds(root, "x509"),
			 *other = client_creds(root, "x509-other");
	struct chan bad = { .fd = -1 }, good = { .fd = -1 };
	size_t len = pages_record(rec, 5);
	int rc = !tls || !other || chan_start_tls(c, tls, NULL) < 0 ||
		 intruder(c, uri, rec, len, tls, other, &bad, &good) < 0;

	rc = rc || expect_error(c, "a page batch of round 1 arrived during round 0");
	chan_close(&bad);
	chan_close(&good);
	chan_close(c);
	tls_creds_free(tls);
	tls_creds_free(other);
	return rc;
}

static bool greedy_mode(const char *mode)
{
	return !strcmp(mode, "huge") || !strcmp(mode, "trickle") || !strcmp(mode, "skip-flood") ||
	       !strcmp(mode, "flood");
}

static int write_state_blob(const char *path)
{
	struct vm_config cfg = { .mem_bytes = MEM, .vcpus = 2 };
	struct vm *vm;
	uint8_t *blob = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int ok = vm_create(&cfg, &vm) == 0;

	if (ok) {
		ok = state_save(vm, &blob, &len) == 0;
		vm_destroy(vm);
	}
	ok = ok && (f = fopen(path, "wb")) && fwrite(blob, 1, len, f) == len;
	if (f && fclose(f))
		ok = 0;
	if (!ok)
		fprintf(stderr, "bad_source: no state blob in %s: %s\n", path, err_msg());
	free(blob);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	static uint8_t rec[64 + FERRY_PAGE_SIZE];
	struct chan c;
	struct iovec iov;
	size_t len;

	if (argc == 3 && !strcmp(argv[1], "state-blob"))
		return write_state_blob(argv[2]);
	if (argc < 3 || chan_connect(&c, argv[2], 10000, NULL) < 0) {
		fprintf(stderr, "usage: bad_source MODE URI (%s)\n", err_msg());
		return 2;
	}
	if (!strcmp(argv[1], "garbage")) {
		iov = (struct iovec){ "GET / HTTP/1.0\r\n\r\n", 18 };
		chan_writev(&c, &iov, 1);
		return expect_error(&c, "not sending a ferry migration stream");
	}
	if (!strncmp(argv[1], "local-", 6))
		return argc < 4 ? 2 : local(&c, argv[1], argv[3]);
	if (greedy_mode(argv[1]))
		return greedy(&c, argv[1], rec);
	if (!strcmp(argv[1], "intruder")) {
		struct chan bad, good;

		len = pages_record(rec, 5);
		if (intruder(&c, argv[2], rec, len, NULL, NULL, &bad, &good) < 0)
			return 1;
		return expect_error(&c, "a page batch of round 1 arrived during round 0");
	}
	if (!strcmp(argv[1], "intruder-tls"))
		return argc < 4 ? 2 : intruder_tls(&c, argv[2], argv[3], rec);
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
	len = pages_record(rec, !strcmp(argv[1], "bad-gfn") ? MEM / FERRY_PAGE_SIZE : 5);
	if (!strcmp(argv[1], "corrupt"))
		rec[40] ^= 0x01; /* a payload byte: the checksum no longer matches */
	if (!strcmp(argv[1], "skip-bit")) {
		((struct rec_header *)rec)->type |= REC_OPTIONAL;
		chan_writev(&c, &(struct iovec){ rec, len }, 1);
		return expect_error(&c, "checksum");
	}
	if (!strcmp(argv[1], "short-round")) {
		struct rec_round marker = { .round = 0, .pages = 2 };

		chan_writev(&c, &(struct iovec){ rec, len }, 1);
		wire_send(&c, REC_ROUND, &(struct iovec){ &marker, sizeof(marker) }, 1);
		return expect_error(&c, "round 0 announced 2 pages, 1 arrived");
	}
	iov = (struct iovec){ rec, !strcmp(argv[1], "truncate") ? len / 2 : len };
	chan_writev(&c, &iov, 1);
	if (!strcmp(argv[1], "truncate")) {
		chan_close(&c);
		return 0;
	}
	return expect_error(&c, !strcmp(argv[1], "corrupt") ? "checksum" : "beyond guest memory");
}
