/* The receiving side of a live migration: accept a connection, build the VM
 * the source describes, load pages and state, answer LOADED, and resume the
 * guest on COMMIT. Nothing in the stream is trusted. A failed or partial
 * migration is discarded and the destination waits for the next one. */
#ifndef FERRY_MIGRATION_DEST_H
#define FERRY_MIGRATION_DEST_H

#include <stdint.h>

#include "migration/migration.h"
#include "vm/vm.h"

struct mig_dest_opts {
	uint64_t mem_limit; /* refuse guests larger than this (0: no limit) */
	enum mem_backend mem_backend;
	enum dirty_backend dirty_backend;
	uint32_t io_timeout_ms;
	bool once;	    /* give up after one failed attempt */
	volatile int *stop; /* set (e.g. by a signal) to stop waiting */
};

/* Progress of the incoming side, readable while it runs. */
struct mig_dest_stats {
	enum mig_status status;
	uint64_t pages_received;
	uint64_t bytes_received;
	uint32_t rounds;
	char reason[512]; /* why the last attempt failed */
};

/* Start listening on uri; returns the listening fd or -errno with err_msg(). */
int mig_dest_listen(const char *uri);
/* Accept migrations on lfd (from mig_dest_listen(uri)) until one completes;
 * return its running VM in *out. Returns -errno if once is set and the
 * attempt fails, or *stop becomes true. Closes lfd. stats (may be NULL) is
 * updated as it goes. */
int mig_dest_run(int lfd, const char *uri, const struct mig_dest_opts *o,
		 struct mig_dest_stats *stats, struct vm **out);

#endif
