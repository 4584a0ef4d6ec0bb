/* What a migration is asked to do (parameters) and what it reports (stats),
 * shared by the source, the destination and the control layer. */
#ifndef FERRY_MIGRATION_MIGRATION_H
#define FERRY_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/compress.h"
#include "migration/autocomp.h"
#include "migration/encode.h"
#include "stream/format.h"

enum mig_status {
	MIG_NONE,
	MIG_SETUP,	/* connecting, handshake, destination allocating memory */
	MIG_ACTIVE,	/* pre-copy rounds, guest running */
	MIG_SWITCHOVER, /* guest paused, last pages and state going out */
	MIG_COMPLETED,	/* the guest runs on the destination */
	MIG_FAILED,	/* before COMMIT: the source guest runs on, memory intact */
	MIG_CANCELLED,	/* likewise, on request */
	MIG_UNKNOWN,	/* COMMIT sent, no answer: paused here, an operator decides */
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
};

#define CONVERGE_LOG 16

struct converge_stats {
	enum converge_strategy asked, active;
	unsigned throttle_pct_max; /* the most any vCPU was slowed */
	unsigned throttle_pct_now; /* the most any vCPU is slowed now */
	uint32_t decisions;	   /* in total; the last CONVERGE_LOG are kept */
	struct {
		uint32_t round;
		char text[200];
	} log[CONVERGE_LOG];
};

/* The parts of the downtime, in ms. */
struct mig_phases {
	double pause, final_sync, final_pages, state, verify, handoff, resume;
};

/* One data channel (or, with none, the main channel's pages). */
struct channel_stats {
	uint64_t bytes;			       /* written to the socket */
	uint64_t raw_bytes;		       /* page payload before compression */
	uint64_t batches, compressed, skipped; /* skipped: did not shrink, went raw */
	uint64_t compress_cpu_ns, wait_ns;     /* CPU compressing; waiting for the socket */
};

struct mig_stats {
	enum mig_status status;
	char reason[512]; /* why it failed, was cancelled or is unknown */
	char uri[256];
	double total_ms, setup_ms, downtime_ms;
	double expected_downtime_ms;
	uint32_t rounds;
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
	struct autocomp codec; /* the codec over time (log, changes) */
};

void mig_params_default(struct mig_params *p);
/* "none", "lz4", "zstd[:LEVEL]" or "auto"; -EINVAL with err_msg() otherwise. */
int mig_compress_parse(const char *spec, struct mig_compress *out);
/* The spec back, e.g. "zstd:3" (buf of 16 bytes or more). */
const char *mig_compress_name(const struct mig_compress *c, char *buf, size_t len);
const char *mig_status_name(enum mig_status s);
bool mig_status_final(enum mig_status s);

#endif
