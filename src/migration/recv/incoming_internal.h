/* What the destination's phases share (recv/incoming.c receives a
 * migration up to COMMIT and pre-copy's end; recv/incoming_postcopy.c the
 * switch to post-copy, its pages after COMMIT and recovery from a broken
 * link): the migration's state and the steps both take. Only for those two
 * files. */
#ifndef FERRY_MIGRATION_RECV_INCOMING_INTERNAL_H
#define FERRY_MIGRATION_RECV_INCOMING_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/handshake.h"
#include "migration/recv/apply.h"
#include "migration/recv/incoming.h"
#include "migration/wire.h"
#include "stream/format.h"

struct incoming {
	const struct mig_dest_opts *o;
	const struct incoming_events *ev;
	int lfd;
	const char *uri;
	struct chan *chan;
	struct wire_buf buf;
	struct rec_header hdr;
	struct handshake hello;
	char peer[256]; /* TLS: the source's identity, every channel's */
	struct vm *vm;
	struct ready_mem *ready; /* memory made ready before the source came */
	struct vm **shell;	 /* a VM made ahead, if any (taken when used) */
	bool lent;		 /* the VM borrows it */
	uint64_t npages;
	uint8_t *state; /* STATE body, kept until END */
	size_t state_len;
	uint64_t *hashes;  /* HASHES, one per page, when verifying */
	uint64_t *hashed;  /* bitmap of pages with a hash */
	uint64_t *written; /* pages the stream wrote; the others are still zero */
	uint64_t *damaged; /* pages whose newest copy failed its hash (apply.h) */
	uint32_t waiting;  /* channels waiting for the link (chan.waiting) */
	uint64_t heard;	   /* bytes all channels received (chan.company) */
	struct prefault *prefault;
	struct receivers *rx;	    /* the data channels */
	struct page_writer pages;   /* the main channel's pages */
	uint32_t round;		    /* rounds ended on the main channel */
	uint64_t round_start_pages; /* main-channel pages before this round */
	uint64_t announced_pages;   /* by the ROUND records so far */
	uint64_t *pending;	    /* POSTCOPY: pages still to come, until the switch */
	uint64_t pending_next;	    /* where the next POSTCOPY record starts */
	uint32_t pending_round;	    /* the round they come in */
	uint64_t *forgotten;	    /* FORGET: pages forgotten ahead of the switch */
	uint64_t forget_next;	    /* where the next FORGET record starts */
	struct postcopy *post;	    /* after the switch to post-copy */
	struct urgent *urgent;	    /* post-copy's asked-for pages */
	uint64_t recover_asked_ns;  /* migrate-recover took the link up again */
};

static inline bool is_page_batch(uint32_t type)
{
	return type == REC_PAGES || type == REC_LPAGES || type == REC_ZPAGES;
}

/* The VM, and what receiving into it needs (recv/incoming_vm.c). */
int incoming_build_vm(struct incoming *in);
/* A record on the main channel; after the switch to post-copy the fault
 * thread writes there too. */
int incoming_say(struct incoming *in, uint32_t type, const struct iovec *body, int n);
/* The next record; the body of a page batch is left to incoming_load_pages. */
int incoming_next_record(struct incoming *in);
int incoming_load_pages(struct incoming *in);
/* Restore the state and check the hashes. */
int incoming_restore(struct incoming *in);
/* Stop the background prefault (if any); -ENOMEM with its sentence if it
 * found the host short of memory. */
int incoming_end_prefault(struct incoming *in);
/* LOADED, after the channels' account (RECEIVED) unless they still
 * receive: in post-copy they do. */
int incoming_say_loaded(struct incoming *in);

/* FORGET: pages that will still be to come at the switch, a record at a
 * time; after the last, they are forgotten now, the guest still running
 * at the source, and FORGOTTEN says so (incoming_postcopy.c). */
int incoming_forget(struct incoming *in);
/* POSTCOPY: the pages still to come, a record at a time; the last one
 * switches. */
int incoming_take_pending(struct incoming *in);
/* After COMMIT in post-copy, the guest running: the pages still to come,
 * through as many broken links as migrate-recover mends; then what the
 * guest felt. */
int incoming_receive_pending(struct incoming *in);

#endif
