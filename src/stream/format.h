/* The migration stream's wire format, mirroring docs/protocol.md: keep the
 * two in step. Fixed-width little-endian fields, records padded to 8 bytes. */
#ifndef FERRY_STREAM_FORMAT_H
#define FERRY_STREAM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/page.h"

#define STREAM_MAGIC 0x3147494d59525245ull /* "ERRYMIG1" */
/* A test build speaks the next version (meson's ferry-next), so that tests
 * can show two versions refusing each other. */
#ifdef FERRY_STREAM_VERSION_NEXT
#define STREAM_VERSION 5
#else
#define STREAM_VERSION 4
#endif
#define STREAM_BYTE_ORDER 0x01020304u

#define REC_OPTIONAL	   0x80000000u
#define REC_MAX_BODY	   (8u << 20)
#define PAGES_MAX_COUNT	   512u
#define HASHES_MAX_COUNT   65536u
#define POSTCOPY_MAX_COUNT (1u << 25) /* pages one POSTCOPY record covers */
#define REQUEST_MAX_COUNT  512u
#define STATE_MAX_BODY	   (1u << 20)
#define ERROR_MAX_TEXT	   1024u

enum rec_type {
	REC_CONFIG = 1,
	REC_PAGES = 2,
	REC_ROUND = 3,
	REC_STATE = 4,
	REC_HASHES = 5,
	REC_END = 6,
	REC_COMMIT = 7,
	REC_CHANNELS = 8,
	REC_JOIN = 9,
	REC_ZPAGES = 10,
	REC_SESSION = 11,
	REC_LPAGES = 12,   /* PAGES of a running guest, each raw page with its own hash */
	REC_POSTCOPY = 13, /* the switch to post-copy: which pages are still to come */
	REC_LOADED = 16,
	REC_RESUMED = 17,
	REC_ERROR = 18,
	REC_READY = 19,
	REC_RECEIVED = REC_OPTIONAL | 20,
	REC_REQUEST = 21,   /* post-copy: pages a thread of the destination waits for */
	REC_PLACED = 22,    /* post-copy: every page is in place */
	REC_RESUME = 23,    /* post-copy recovery: the source comes back to its migration */
	REC_RECOVER = 24,   /* post-copy recovery: which pages the destination still lacks */
	REC_FORGET = 25,    /* before the switch to post-copy: pages certain to be still to come */
	REC_FORGOTTEN = 26, /* the destination forgot them */
	REC_MEMFD = 27,	    /* local migration: guest memory's fd goes with it (SCM_RIGHTS) */
};

enum page_encoding {
	PAGE_RAW = 0,	/* 4096 bytes of payload */
	PAGE_ZERO = 1,	/* no payload */
	PAGE_XBZRLE = 2 /* a delta of entry length bytes against the previous copy */
};

/* A page entry: gfn in bits 0-39, payload length (XBZRLE only) in bits
 * 40-55, encoding in bits 56-63. */
#define PAGE_ENTRY_LEN(gfn, enc, len) \
	((uint64_t)(gfn) | (uint64_t)(len) << 40 | (uint64_t)(enc) << 56)
#define PAGE_ENTRY(gfn, enc) PAGE_ENTRY_LEN(gfn, enc, 0)
#define PAGE_ENTRY_GFN(e)    ((e) & ((1ull << 40) - 1))
#define PAGE_ENTRY_SIZE(e)   ((uint32_t)((e) >> 40) & 0xffff)
#define PAGE_ENTRY_ENC(e)    ((uint32_t)((e) >> 56))

#define CONFIG_VERIFY	1ull
#define CONFIG_CHANNELS 2ull /* a CHANNELS record follows CONFIG */
#define CONFIG_POSTCOPY 4ull /* the source may switch to post-copy */
#define CONFIG_LOCAL	8ull /* MEMFD hands the memory over; no page is sent */

#define CHANNELS_MAX	   16u
#define CHANNEL_URGENT	   CHANNELS_MAX /* JOIN index of post-copy's urgent channel */
#define CHANNEL_TOKEN_SIZE 16u

/* How a ZPAGES payload is compressed (codec/compress.h kinds). */
enum zpages_codec {
	ZPAGES_LZ4 = 1,
	ZPAGES_ZSTD = 2,
};

struct stream_header {
	uint64_t magic;
	uint32_t version;
	uint32_t byte_order;
};

struct rec_header {
	uint32_t type;
	uint32_t length;
	uint64_t checksum;
};

struct rec_config {
	uint64_t mem_bytes;
	uint32_t vcpus;
	uint32_t page_size;
	uint64_t tsc_khz;
	uint64_t flags;
};

struct rec_pages {
	uint32_t count;
	uint32_t round;
	uint64_t entries[];
};

/* Right after CONFIG: the migration's id, random and never 0, by which both
 * sides and their operators name this migration. */
struct rec_session {
	uint64_t id;
	uint64_t reserved;
};

/* After SESSION, on the main channel: how many data channels will join and
 * the secret each must present. */
struct rec_channels {
	uint32_t count;
	uint32_t reserved;
	uint8_t token[CHANNEL_TOKEN_SIZE];
};

/* The first record on a data channel. */
struct rec_join {
	uint32_t index;
	uint32_t reserved;
	uint8_t token[CHANNEL_TOKEN_SIZE];
};

/* PAGES whose payload is one compressed frame of payload_len bytes, whose
 * XXH3-64 is payload_hash (a codec's own mistakes are caught too). */
struct rec_zpages {
	uint32_t count;
	uint32_t round;
	uint32_t codec;
	uint32_t payload_len;
	uint64_t payload_hash;
	uint64_t entries[];
};

/* The destination's account of one data channel (RECEIVED). */
struct rec_received_chan {
	uint64_t bytes;
	uint64_t batches;
	uint64_t decompress_ns; /* CPU time */
	uint64_t barrier_waits; /* rounds this channel waited for the others */
};

struct rec_round {
	uint32_t round;
	uint32_t reserved;
	uint64_t pages;
};

struct rec_hashes {
	uint64_t first_gfn;
	uint32_t count;
	uint32_t reserved;
	uint64_t hash[];
};

/* The pages first_gfn.. first_gfn + count whose content the destination
 * does not have (a bit set: one to come), after the VM state; records in
 * order of first_gfn, the last ending at the last page. count is a
 * multiple of 64 but in the last. */
struct rec_postcopy {
	uint64_t first_gfn;
	uint32_t count;
	uint32_t round; /* the round its pages come in */
	uint64_t bits[];
};

/* The first record on a connection that recovers a broken post-copy: the
 * migration it comes back to, and its secret. */
struct rec_resume {
	uint64_t id;
	uint8_t token[CHANNEL_TOKEN_SIZE];
};

/* PLACED's body: the destination's account of post-copy. The record
 * carries blocked_ns[0..vcpus) only. */
#define PLACED_MAX_VCPUS 64u
struct rec_placed {
	uint64_t faults;	/* page faults read */
	uint64_t asked, pushed; /* pages placed after a request, and without one */
	uint64_t wait_p50_ns, wait_p99_ns, wait_max_ns; /* from a request to its page */
	uint64_t wait_hist[32]; /* [k]: waits under 2^k us (and at least 2^(k-1)) */
	uint32_t vcpus;
	uint32_t reserved;
	uint64_t blocked_ns[PLACED_MAX_VCPUS]; /* how long each vCPU waited for pages */
};

/* READY's body: what the destination speaks, for the source to check in
 * its turn (the destination checked the stream header's version). */
struct rec_ready {
	uint32_t stream_version;
	uint32_t state_version;
};

/* Local migration, after SESSION: guest memory is the file whose fd the
 * record's first byte carries (SCM_RIGHTS on a unix socket), mem_bytes
 * long from offset 0 and sealed against shrinking. */
struct rec_memfd {
	uint64_t mem_bytes;
	uint32_t backend; /* enum mem_backend: MEM_MEMFD or MEM_HUGETLB */
	uint32_t reserved;
};

struct rec_request {
	uint32_t count;
	uint32_t reserved;
	uint64_t gfn[];
};

struct rec_error {
	uint32_t code;
	uint32_t reserved;
	char text[];
};

_Static_assert(sizeof(struct stream_header) == 16, "stream header");
_Static_assert(sizeof(struct rec_header) == 16, "record header");
_Static_assert(offsetof(struct rec_header, checksum) == 8, "checksum offset");
_Static_assert(sizeof(struct rec_config) == 32, "CONFIG");
_Static_assert(offsetof(struct rec_config, tsc_khz) == 16, "CONFIG tsc_khz");
_Static_assert(sizeof(struct rec_pages) == 8, "PAGES fixed part");
_Static_assert(sizeof(struct rec_round) == 16, "ROUND");
_Static_assert(sizeof(struct rec_session) == 16, "SESSION");
_Static_assert(sizeof(struct rec_channels) == 24, "CHANNELS");
_Static_assert(sizeof(struct rec_join) == 24, "JOIN");
_Static_assert(sizeof(struct rec_zpages) == 24, "ZPAGES fixed part");
_Static_assert(sizeof(struct rec_received_chan) == 32, "RECEIVED entry");
_Static_assert(sizeof(struct rec_hashes) == 16, "HASHES fixed part");
_Static_assert(sizeof(struct rec_error) == 8, "ERROR fixed part");
_Static_assert(sizeof(struct rec_postcopy) == 16, "POSTCOPY fixed part");
_Static_assert(sizeof(struct rec_resume) == 24, "RESUME");
_Static_assert(sizeof(struct rec_request) == 8, "REQUEST fixed part");
_Static_assert(sizeof(struct rec_ready) == 8, "READY");
_Static_assert(sizeof(struct rec_memfd) == 16, "MEMFD");
_Static_assert(offsetof(struct rec_placed, blocked_ns) == 312, "PLACED fixed part");

static inline uint32_t rec_padded(uint32_t length)
{
	return (length + 7u) & ~7u;
}

#endif
