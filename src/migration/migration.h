/* What a migration is asked to do (parameters) and what it reports (stats),
 * shared by the source, the destination and the control layer. */
#ifndef FERRY_MIGRATION_MIGRATION_H
#define FERRY_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/compress.h"
#include "stream/format.h"
#include "vm/vm.h"

enum mig_status {
	MIG_NONE,
	MIG_SETUP,	      /* connecting, handshake, destination allocating memory */
	MIG_ACTIVE,	      /* pre-copy rounds, guest running */
	MIG_SWITCHOVER,	      /* guest paused, last pages and state going out */
	MIG_POSTCOPY,	      /* the guest runs on the destination, its last pages follow */
	MIG_POSTCOPY_PAUSED,  /* post-copy's link broke: waiting for migrate --resume */
	MIG_POSTCOPY_RECOVER, /* migrate --resume: taking the link up again */
	MIG_COMPLETED,	      /* the guest runs on the destination */
	MIG_FAILED,	      /* before COMMIT: the source guest runs on, memory intact */
	MIG_CANCELLED,	      /* likewise, on request */
	MIG_UNKNOWN,	      /* COMMIT sent, no answer: paused here, an operator decides */
	MIG_LOST, /* post-copy broke after the guest ran there: neither side can run it */
};

enum converge_strategy {
	CONVERGE_AUTO,
	CONVERGE_THROTTLE,
	CONVERGE_SDPS,
	CONVERGE_DIRTY_LIMIT,
	CONVERGE_NONE,
};

/* --compress: a fixed codec, or auto (migration/autocomp.h). */
struct mig_compress {
	enum compress_kind kind; /* fixed: COMPRESS_NONE, _LZ4 or _ZSTD */
	int level;		 /* zstd's level */
	bool automatic;
};

/* Bounds of the parameters that are times (so that none overflows). */
#define MIG_DOWNTIME_MS_MAX   3600000ull /* an hour */
#define MIG_TIMEOUT_S_MAX     604800ull	 /* a week */
#define MIG_IO_TIMEOUT_MS_MIN 100ull
#define MIG_IO_TIMEOUT_MS_MAX 3600000ull
#define MIG_RECOVER_S_DEFAULT 300u /* a broken post-copy waits for recovery */
/* A destination's deadlines for a source: from connecting to READY, and
 * from READY to COMMIT (a peer may not hold the one listener for ever). */
#define MIG_HANDSHAKE_S_DEFAULT 30u
#define MIG_TRANSFER_S_DEFAULT	3600u

struct mig_params {
	uint64_t downtime_ms;		 /* acceptable pause (default 300) */
	uint64_t max_bandwidth_bps;	 /* 0: unlimited (the default) */
	uint64_t timeout_s;		 /* give up after this long (default 600; 0: never) */
	uint32_t io_timeout_ms;		 /* a stalled connection fails after this long (10000) */
	bool verify;			 /* hash every page at switchover */
	uint64_t xbzrle_cache_bytes;	 /* 0: no XBZRLE */
	enum converge_strategy converge; /* default auto */
	uint32_t throttle_initial;	 /* throttle: first step, % (20) */
	uint32_t throttle_increment;	 /* throttle: later steps, % (10) */
	uint32_t throttle_max;		 /* every throttling strategy's cap, % (99) */
	uint32_t channels;		 /* data channels; 0: pages on the main channel */
	struct mig_compress compress;	 /* default none */
	bool postcopy;			 /* a switch to post-copy is allowed */
	uint32_t recover_timeout_s;	 /* a broken post-copy waits this long for
					    migrate --resume (0: no end) */
	bool local;	     /* same host: hand the memory over (a unix socket), copy nothing */
	char tls_creds[256]; /* "": plain; else TLS with the credentials there (transport/tls.h) */
	char tls_hostname[256]; /* TLS, x509: the name the destination's certificate must carry */
};

/* --compress auto's plan: codec lo for most batches, hi (denser, more CPU)
 * for hi_share of them. A fixed codec is lo == hi, hi_share 0. */
struct codec_plan {
	enum compress_kind lo, hi;
	double hi_share;
};

/* A change of plan, with the link rate and ratio it was made on. */
struct codec_change {
	double t_ms;
	struct codec_plan plan;
	double link_mbps;
	double ratio; /* raw / wire the plan expects */
};

#define CODEC_LOG 32

/* The codec over a migration, for the report. */
struct codec_report {
	struct codec_plan now;
	uint32_t changes;		    /* in total */
	struct codec_change log[CODEC_LOG]; /* the first CODEC_LOG */
};

/* "lz4", or "lz4+zstd:40%" for a mix. */
const char *codec_plan_name(const struct codec_plan *p, char *buf, unsigned len);

struct xbzrle_stats {
	uint64_t cache_bytes;
	uint64_t pages;	       /* sent as a delta */
	uint64_t hits;	       /* cached when re-sent */
	uint64_t misses;       /* not cached when re-sent */
	uint64_t overflows;    /* cached, but the delta was not smaller */
	uint64_t seeded;       /* round 0's pages left in the cache */
	uint64_t digest_bytes; /* line digests (codec/digest.h), beside the cache */
	uint64_t line_pages;   /* misses sent as a delta of lines */
	uint64_t bytes_saved;
	uint64_t encode_ns; /* time spent in lookups, deltas and cache copies */
};

#define CONVERGE_LOG 16

struct converge_stats {
	enum converge_strategy asked, active;
	unsigned throttle_pct_max; /* the most any vCPU was slowed */
	unsigned throttle_pct_now; /* the most any vCPU is slowed now */
	unsigned nr_vcpus;
	uint8_t vcpu_pct_max[VM_MAX_VCPUS]; /* the most each vCPU was slowed */
	uint32_t decisions;		    /* in total; the last CONVERGE_LOG are kept */
	struct {
		uint32_t round;
		char text[200];
	} log[CONVERGE_LOG];
};

/* A pre-copy round as it went (the report) or as a forecast has it
 * (migration/plan/predict.h): the two side by side show where a forecast
 * goes wrong. The first MIG_ROUND_LOG rounds are kept. */
#define MIG_ROUND_LOG 32

struct round_record {
	uint64_t pages;	       /* sent in it */
	uint64_t dirtied;      /* dirty at its end: the next round's pages */
	double ms;	       /* how long it took */
	unsigned throttle_pct; /* the most any vCPU was slowed during it */
};

/* The parts of the downtime, in ms. */
struct mig_phases {
	double pause, final_sync, final_pages, state, verify, handoff, resume;
};

/* One data channel (or, with none, the main channel's pages). */
struct channel_stats {
	uint64_t bytes;			       /* written to the socket */
	uint64_t raw_bytes;		       /* page payload before compression */
	uint64_t wire_bytes;		       /* and after */
	uint64_t batches, compressed, skipped; /* skipped: did not shrink, went raw */
	uint64_t compress_cpu_ns, wait_ns;     /* CPU compressing; waiting for the socket */
};

/* Post-copy, once switched to: the source's account, and the destination's
 * (its PLACED record). */
struct postcopy_report {
	bool used;
	double ms;		  /* from COMMIT to PLACED */
	uint64_t pending;	  /* pages still to send at the switch */
	uint64_t requests;	  /* REQUEST records */
	uint64_t requested_pages; /* pages they asked for */
	struct rec_placed placed;
	double forget_ms;    /* FORGET -> FORGOTTEN, the guest running here */
	uint32_t recoveries; /* broken links taken up again (migrate --resume) */
	double recover_ms;   /* the last: from migrate --resume to the link back */
};

struct mig_stats {
	enum mig_status status;
	uint64_t id;	  /* the migration's (SESSION) */
	char reason[512]; /* why it failed, was cancelled or is unknown */
	char uri[256];
	double total_ms, setup_ms, downtime_ms;
	double expected_downtime_ms;
	uint32_t rounds;
	struct round_record round_log[MIG_ROUND_LOG];
	uint64_t bytes_sent;
	uint64_t pages_raw, pages_zero, pages_xbzrle;
	uint64_t remaining_pages; /* dirty pages not yet sent */
	double bandwidth_bps;	  /* measured on the last full round */
	double dirty_rate_pps;	  /* pages dirtied per second in the last round */
	struct mig_phases phase;
	const char *verify; /* "ok", "mismatch" or "off" */
	struct xbzrle_stats xbzrle;
	struct converge_stats converge;
	uint32_t channels;	      /* data channels; chan[] has max(channels, 1) entries */
	struct mig_compress compress; /* as asked */
	struct channel_stats chan[CHANNELS_MAX];
	/* The destination's side of each, from its RECEIVED record at the end. */
	struct rec_received_chan received[CHANNELS_MAX];
	struct codec_report codec; /* the codec over time */
	struct postcopy_report postcopy;
	bool local; /* the memory was handed over, not sent */
};

void mig_params_default(struct mig_params *p);
/* Whether a local migration takes the migrate argument key (it sends no
 * page: uri, local, verify, timeout and io-timeout-ms only). */
bool mig_local_takes(const char *key);
/* Why a local migration does not take key, for the sentence: "sends no
 * page", or for TLS that it never leaves the host. */
const char *mig_local_why_not(const char *key);

/* The statuses migrations went through, in order, as their source or
 * destination keeps them for the control socket's MIGRATION events: a ring
 * of the last MIG_TRAIL, and how many in all. Its owner locks it. */
#define MIG_TRAIL 64
struct mig_trail {
	enum mig_status status[MIG_TRAIL];
	uint32_t total;
};
void mig_trail_note(struct mig_trail *t, enum mig_status s);
/* Those since *seen (a count: start at 0; one that fell more than MIG_TRAIL
 * behind loses the oldest), at most max, into out; *seen moves past them.
 * Returns how many. */
uint32_t mig_trail_read(const struct mig_trail *t, uint32_t *seen, enum mig_status *out,
			uint32_t max);
/* "none", "lz4", "zstd[:LEVEL]" or "auto"; -EINVAL with err_msg() otherwise. */
int mig_compress_parse(const char *spec, struct mig_compress *out);
/* The spec back, e.g. "zstd:3" (buf of 16 bytes or more). */
const char *mig_compress_name(const struct mig_compress *c, char *buf, size_t len);
const char *mig_status_name(enum mig_status s);
bool mig_status_final(enum mig_status s);

#endif
