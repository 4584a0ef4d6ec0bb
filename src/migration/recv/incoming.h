/* One incoming migration on an accepted connection, from the stream header
 * to COMMIT: the VM the source describes, its data channels, pages, state
 * and hashes, all checked; LOADED; the guest started on COMMIT. The
 * destination (recv/dest.h) runs one after another and is told what
 * happens through the events. */
#ifndef FERRY_MIGRATION_RECV_INCOMING_H
#define FERRY_MIGRATION_RECV_INCOMING_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/recv/dest.h"
#include "migration/recv/felt.h"
#include "migration/recv/ready_mem.h"
#include "transport/chan.h"

struct incoming_progress {
	uint64_t id, pages, bytes;
	uint32_t rounds;
};

/* migrate-recover's answer to a broken post-copy link. */
struct recover_ask {
	char uri[256];	   /* where the source is to come back */
	int lfd;	   /* listening there already */
	bool own_lfd;	   /* the taker closes it (not the --incoming one) */
	int wait_ms;	   /* how long to wait for the source there */
	uint64_t asked_ns; /* when migrate-recover came */
};

struct incoming_events {
	void *opaque;
	/* The migration's id is known, or pages and rounds came. */
	void (*progress)(void *opaque, const struct incoming_progress *p);
	/* LOADED went out. */
	void (*loaded)(void *opaque);
	/* COMMIT came: 0 to start the guest, or -errno (with err_msg()) to
	 * refuse it. */
	int (*commit)(void *opaque);
	/* What the guest felt (recv/felt.h), once it runs here. */
	void (*felt)(void *opaque, const struct felt *f);
	/* Post-copy's link broke (why): wait for migrate-recover. 0 with its
	 * answer in *ask, or -ECANCELED with err_msg() once given up (the
	 * guest is lost then). */
	int (*paused)(void *opaque, const char *why, struct recover_ask *ask);
	/* Pages flow again, ms after migrate-recover. */
	void (*recovered)(void *opaque, double ms);
};

/* Receive one migration on c (accepted on lfd, listening on uri; data
 * channels are accepted there too), into ready's memory if it has enough,
 * in *shell if the guest fits it (a VM made ahead without vCPUs,
 * vm_create_shell; taken: *shell becomes NULL). Returns 0 with the guest
 * running in *out, or -errno with the reason; the partial VM is gone then. */
int incoming_receive(struct chan *c, int lfd, const char *uri, const struct mig_dest_opts *o,
		     struct ready_mem *ready, struct vm **shell, const struct incoming_events *ev,
		     struct vm **out);

#endif
