/* What the source's phases share (send/source.c runs setup, the rounds,
 * the switchover and the outcome; send/postcopy.c the switch to post-copy):
 * the migration's state, and the steps more than one phase takes. Only
 * for those two files. */
#ifndef FERRY_MIGRATION_SEND_SOURCE_INTERNAL_H
#define FERRY_MIGRATION_SEND_SOURCE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "migration/handshake.h"
#include "migration/migration.h"
#include "migration/send/converge.h"
#include "migration/send/encoder.h"
#include "migration/send/meter.h"
#include "migration/send/pipeline.h"
#include "migration/send/policy.h"
#include "transport/chan.h"
#include "util/cancel.h"
#include "util/time.h"

struct mig_source {
	struct vm *vm;
	char uri[256];
	struct chan chan;      /* the main channel */
	struct chan urgent;    /* post-copy's asked-for pages (requests.h) */
	struct tls_creds *tls; /* every connection's, if the params ask for TLS */
	struct pipeline *pipe;
	struct cancel cancel; /* fired by a cancel before COMMIT */
	struct handshake hello;
	pthread_t thread;
	uint64_t *dirty; /* pages to send this round */
	uint64_t npages;
	struct encoder enc;
	struct meter meter;
	struct policy policy;
	struct converge conv;
	uint64_t start_ns;
	bool paused;	      /* we paused the guest (switchover) */
	bool to_postcopy;     /* the switch is to post-copy */
	uint64_t *carry;      /* with post-copy under auto: pages round 0's early look took */
	bool looked;	      /* it did */
	bool lost;	      /* post-copy broke after the guest ran there */
	bool told;	      /* post-copy: the destination gave up (ERROR) */
	uint64_t pause_ns;    /* when the switch paused the guest */
	uint64_t sent_before; /* bytes sent on links post-copy lost */

	/* Lock order: m->lock before the pipeline's lock and the VM's. The
	 * migration thread alone writes the fields above; the ones below are
	 * shared with the control thread. */
	pthread_mutex_t lock;
	struct mig_params params;
	struct mig_stats stats;
	bool cancelled;
	bool committed;		     /* COMMIT went out: never resume here on our own */
	bool postcopy_asked;	     /* migrate-start-postcopy */
	bool there;		     /* the guest ran on the destination: RESUMED, or a recovery */
	pthread_cond_t resume_asked; /* resume_uri set, or cancelled */
	char resume_uri[256];	     /* migrate --resume's, until taken */
	uint64_t resume_asked_ns;
	struct mig_trail trail; /* every status it went through, in order */
};

void source_set_status(struct mig_source *m, enum mig_status s);
/* The same, under m->lock. */
void source_note_status(struct mig_source *m, enum mig_status s);
/* The parameters as they are now (migrate-set-parameters may change some). */
struct mig_params source_params(struct mig_source *m);
/* Where the sender stands now, for the meter. */
struct meter_sample source_sample(struct mig_source *m);
/* Publish progress for query-migrate, and apply changed parameters. */
void source_progress(struct mig_source *m, uint64_t remaining);
/* n pages of gfns, encoded into a batch, into the pipeline. */
int source_send_batch(struct mig_source *m, const uint64_t *gfns, uint32_t n, uint32_t round);
/* The switch begins: status switchover, full speed, vCPUs paused (the
 * time it took into *pause_ms, *t moved on). */
int source_pause(struct mig_source *m, double *pause_ms, uint64_t *t);
/* STATE, and HASHES of every page with --verify, the guest paused; how
 * long each took into ph (state, verify), *t moved on. */
int source_send_machine(struct mig_source *m, struct mig_phases *ph, uint64_t *t);
/* A round ended: count it and keep its record (the report's round_log).
 * Under m->lock. */
void source_count_round(struct mig_source *m, struct round_record rec);
/* The point of no return: unless a cancel came first, COMMIT goes out and
 * from then on the guest may run on the destination. */
int source_commit(struct mig_source *m);

/* Milliseconds since *t, which becomes now. */
static inline double ms_since(uint64_t *t)
{
	uint64_t now = time_now_ns();
	double ms = (double)(now - *t) / 1e6;

	*t = now;
	return ms;
}

#endif
