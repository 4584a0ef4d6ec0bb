/* The receiving side of a live migration: accept a connection, build the VM
 * the source describes, load pages and state, answer LOADED, and resume the
 * guest on COMMIT. Nothing in the stream is trusted. A failed or partial
 * migration is discarded and the destination waits for the next one.
 *
 * One thread runs the destination (mig_dest_run); any other may read its
 * progress, stop it, or fence the migration in progress. COMMIT is decided
 * under the same lock as a stop or a fence, so exactly one of them wins: a
 * guest started here was never refused, and a refused one never starts. */
#ifndef FERRY_MIGRATION_RECV_DEST_H
#define FERRY_MIGRATION_RECV_DEST_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/migration.h"
#include "migration/recv/felt.h"
#include "migration/recv/ready_mem.h"
#include "vm/vm.h"

struct mig_dest_opts {
	uint64_t mem_limit; /* refuse guests larger than this (0: no limit) */
	enum mem_backend mem_backend;
	enum dirty_backend dirty_backend;
	uint32_t io_timeout_ms;	      /* also how long LOADED waits for COMMIT */
	bool prealloc;		      /* make mem_limit bytes ready before listening */
	bool no_background_prefault;  /* memory not made ready faults in on demand */
	uint32_t recover_timeout_s;   /* a broken post-copy waits this long for
					 migrate-recover before the guest is lost (0: no end) */
	uint32_t handshake_timeout_s; /* from a source's connection to READY (0: no end) */
	/* NULL: plain; else every connection speaks TLS with these first
	 * (transport/tls.h), and a migration's channels are one source's. */
	const struct tls_creds *tls;
	uint32_t transfer_timeout_s; /* from READY to COMMIT (0: no end) */
};

enum dest_phase {
	DEST_WAITING,	      /* for a source to connect */
	DEST_RECEIVING,	      /* a migration's pages and state */
	DEST_LOADED,	      /* LOADED sent: waiting for COMMIT, until a deadline */
	DEST_RUNNING,	      /* COMMIT came: the guest runs here */
	DEST_STOPPED,	      /* asked to stop: serves no more */
	DEST_POSTCOPY_PAUSED, /* post-copy's link broke: waiting for migrate-recover */
};

struct mig_dest_stats {
	enum dest_phase phase;
	uint64_t id; /* the migration in progress, or the one that completed */
	uint64_t pages_received, bytes_received;
	uint32_t rounds;
	double commit_wait_ms; /* DEST_LOADED: how much longer it waits for COMMIT */
	uint32_t attempts;     /* migrations that came */
	uint64_t failed_id;    /* the last that failed (0: none), and why */
	bool failed_fenced;    /* it was fenced (migrate-incoming-cancel) */
	char failure[512];
	struct ready_info memory; /* memory made ready for the guest */
	struct felt felt;	  /* what the guest that came felt (recv/felt.h) */
	char paused_why[512];	  /* DEST_POSTCOPY_PAUSED: what broke */
	double recover_left_ms;	  /* DEST_POSTCOPY_PAUSED: the window left (-1: no end) */
	uint32_t recoveries;	  /* broken post-copy links taken up again */
	double recover_ms;	  /* the last: from migrate-recover to pages flowing */
};

struct mig_dest;

/* Listen on uri for migrations; with o->prealloc, once its memory is
 * ready. Returns 0 or -errno with err_msg(). */
int mig_dest_open(const char *uri, const struct mig_dest_opts *o, struct mig_dest **out);
/* Serve migrations until one completes; its running VM in *out. Returns
 * -ECANCELED once stopped, or -errno when an fd: destination's only
 * attempt fails. */
int mig_dest_run(struct mig_dest *d, struct vm **out);
struct mig_dest_stats mig_dest_stats(struct mig_dest *d);
/* The statuses its migrations went through since *seen (mig_trail_read),
 * named as a source's: active, switchover (LOADED sent), completed, failed,
 * post-copy's. */
uint32_t mig_dest_trail(struct mig_dest *d, uint32_t *seen, enum mig_status *out, uint32_t max);
/* Stop serving, for why (a signal, quit). A migration before COMMIT fails
 * and the source resumes its guest. Returns 0, or -EALREADY once COMMIT has
 * come: the guest runs here and is stopped as any VM. */
int mig_dest_stop(struct mig_dest *d, const char *why);
/* migrate-incoming-cancel: fail the migration in progress and refuse its
 * COMMIT, should it come late; then wait for the next. Returns 0 (its id
 * in *id), -EALREADY if the guest runs here, or -ENOENT if no migration is
 * in progress; with err_msg(). A post-copy paused on a broken link is
 * given up: its guest is lost. */
int mig_dest_fence(struct mig_dest *d, uint64_t *id);
/* migrate-recover: a broken post-copy link is to be taken up again on uri
 * (the source comes with 'migrate --resume'). Returns 0, or -errno with
 * err_msg() when no post-copy is paused here or uri will not do. */
int mig_dest_recover(struct mig_dest *d, const char *uri);
/* migrate-incoming-prealloc: make bytes of backend memory ready for the
 * next guest, on a thread of its own (stats.memory says when). Returns 0,
 * or -errno with err_msg(). */
int mig_dest_prealloc(struct mig_dest *d, uint64_t bytes, enum mem_backend backend);
void mig_dest_close(struct mig_dest *d);
const char *dest_phase_name(enum dest_phase p);

#endif
