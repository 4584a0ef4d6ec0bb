/* The source's page pipeline. The migration thread fills batches of pages
 * and hands them over; each data channel's worker thread takes the next
 * batch, compresses it or not (--compress, migration/autocomp.h) and writes
 * it to its own connection, so the batches go to whichever channel is free.
 * With no data channels the migration thread does the same on the main
 * channel itself. A round ends on every data channel with a ROUND record,
 * after which the destination lines the channels up (migration/round_gate.h):
 * a page's older copy never lands after its newer one (DESIGN.md §3). */
#ifndef FERRY_MIGRATION_PIPELINE_H
#define FERRY_MIGRATION_PIPELINE_H

#include <stdint.h>
#include <sys/uio.h>

#include "migration/migration.h"
#include "transport/chan.h"

#define BATCH_PAGES 128

struct batch {
	uint32_t round, count;
	uint64_t entries[BATCH_PAGES];
	struct iovec iov[BATCH_PAGES]; /* the payload, in entry order */
	int niov;
	uint32_t payload_len;
	uint8_t *buf;  /* room for BATCH_PAGES pages: copies and deltas */
	uint32_t used; /* bytes of buf in use */
	struct batch *next;
};

struct pipeline;

/* Connect p->channels data channels to uri, each presenting token (JOIN);
 * main carries the pages itself when there are none. */
int pipeline_open(const char *uri, struct chan *main, const struct mig_params *p,
		  const uint8_t *token, struct pipeline **out);
/* An empty batch to fill (waits for one); -errno with err_msg() once the
 * pipeline has failed. */
int pipeline_batch(struct pipeline *p, struct batch **out);
/* Send b (now or on a worker); it comes back through pipeline_batch. */
int pipeline_submit(struct pipeline *p, struct batch *b);
/* Wait until every batch is out, then end round on every data channel. */
int pipeline_end_round(struct pipeline *p, uint32_t round);
/* After the last round: END on every data channel. */
int pipeline_end(struct pipeline *p);
/* Bytes written to the data channels, and bytes of those still in the
 * kernel's queues (0 without data channels). */
uint64_t pipeline_bytes_sent(struct pipeline *p);
uint64_t pipeline_queued(struct pipeline *p);
void pipeline_set_rate(struct pipeline *p, uint64_t max_bandwidth_bps);
/* Fill s->channels, s->chan[] (source side) and s->codec. */
void pipeline_stats(struct pipeline *p, struct mig_stats *s);
/* Make every worker's blocked write fail now; safe from any thread. */
void pipeline_shutdown(struct pipeline *p);
void pipeline_close(struct pipeline *p);

#endif
