/* The source's page pipeline. The migration thread has batches filled
 * (send/encoder.h) and hands them over; each data channel's worker thread
 * takes the next batch, compresses it or not (--compress, send/autocomp.h)
 * and writes it to its own connection, so the batches go to whichever
 * channel is free. With no data channels the migration thread does the same
 * on the main channel itself. A round ends on every data channel with a
 * ROUND record, after which the destination lines the channels up
 * (recv/round_gate.h): a page's older copy never lands after its newer one
 * (DESIGN.md section 3).
 *
 * The pipeline owns its batches, workers and data channels. Threads: the
 * migration thread calls everything; workers run inside; any thread may
 * read the counters. A cancel reaches the workers' channels through the
 * cancel the pipeline was opened with, never by touching their sockets. */
#ifndef FERRY_MIGRATION_SEND_PIPELINE_H
#define FERRY_MIGRATION_SEND_PIPELINE_H

#include <stdint.h>

#include "migration/migration.h"
#include "migration/send/batch.h"
#include "transport/chan.h"

struct pipeline;
struct cancel;
struct tls_creds;

/* Connect p->channels data channels to uri (over TLS with tls: NULL for
 * none), each presenting token (JOIN) within p->io_timeout_ms unless
 * cancel fires; main carries the pages itself when there are none. *out
 * must be closed either way. */
int pipeline_open(const char *uri, struct chan *main, const struct mig_params *p,
		  const uint8_t *token, const struct cancel *cancel, const struct tls_creds *tls,
		  struct pipeline **out);
/* An empty batch to fill (waits for one); -errno with err_msg() once the
 * pipeline has failed. */
int pipeline_batch(struct pipeline *p, struct batch **out);
/* Send b (now or on a worker); it comes back through pipeline_batch. */
int pipeline_submit(struct pipeline *p, struct batch *b);
/* Wait until every batch is out, then end round on every data channel. */
int pipeline_end_round(struct pipeline *p, uint32_t round);
/* After the last round: END on every data channel. */
int pipeline_end(struct pipeline *p);

/* The data channels' traffic (all zero without data channels, whose pages
 * the main channel counts): bytes written, bytes of those still in the
 * kernel's queues; and the page payload before and after compression on
 * every channel, the main one included. */
struct pipeline_counters {
	uint64_t bytes, queued, raw_bytes, wire_bytes;
};
void pipeline_counters(struct pipeline *p, struct pipeline_counters *out);
void pipeline_set_rate(struct pipeline *p, uint64_t max_bandwidth_bps);
/* Fill s->chan[] (source side) and s->codec. */
void pipeline_stats(struct pipeline *p, struct mig_stats *s);
/* Stop the workers (a blocked write fails), join them, free everything. */
void pipeline_close(struct pipeline *p);

/* Writes on the data channels end when main becomes readable (chan.speaker). */
void pipeline_watch(struct pipeline *p, const struct chan *main);

#endif
