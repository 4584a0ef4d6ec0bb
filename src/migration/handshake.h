/* The conversation around the pages, for both sides: how a migration opens
 * on the main connection (stream header, CONFIG, SESSION, CHANNELS), how a
 * data channel joins it (JOIN with the migration's token), how a broken
 * post-copy is taken up again (RESUME, with the same token), how the source
 * waits for the destination's answers (READY, LOADED, RESUMED) and how a
 * refusal (ERROR) travels as a sentence. */
#ifndef FERRY_MIGRATION_HANDSHAKE_H
#define FERRY_MIGRATION_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "migration/wire.h"
#include "stream/format.h"

struct cancel;

/* What the opening says: the VM's shape, the migration's id, and the data
 * channels that will join (channels.count 0: none). */
struct handshake {
	struct rec_config config;
	uint64_t id;
	struct rec_channels channels;
};

/* Source: the stream header, CONFIG, SESSION and (with data channels)
 * CHANNELS. */
int handshake_send(struct chan *c, const struct handshake *h);
/* Destination: read and check what handshake_send sent. */
int handshake_receive(struct chan *c, struct wire_buf *buf, struct handshake *h);

/* Source: connect data channel index to uri (over TLS with tls, as every
 * new connection of a migration: NULL for none) and present token. */
int handshake_join(struct chan *c, const char *uri, uint32_t index, const uint8_t *token,
		   int timeout_ms, const struct cancel *cancel, const struct tls_creds *tls);
/* Destination: read a new connection's JOIN; its index if it presents the
 * migration's token and claims a channel not yet joined[], else -errno
 * with the reason. */
int handshake_check_join(struct chan *c, const struct rec_channels *ch, const bool *joined);
/* Destination: the same for post-copy's urgent channel (index
 * CHANNEL_URGENT): 0 or -errno with the reason. */
int handshake_check_urgent(struct chan *c, const struct rec_channels *ch);

/* Source: connect to uri to recover migration id's broken post-copy: the
 * stream header and RESUME, with the migration's token. */
int handshake_resume(struct chan *c, const char *uri, uint64_t id, const uint8_t *token,
		     int timeout_ms, const struct cancel *cancel, const struct tls_creds *tls);
/* Destination: read a new connection's RESUME: 0 if it names migration id
 * and presents its token, else -errno with the reason. */
int handshake_check_resume(struct chan *c, uint64_t id, const uint8_t *token);

/* Source: wait for the destination's record want. An ERROR is returned as
 * "destination refused: SENTENCE", with *refused set (if not NULL): the
 * destination said no, rather than the link failing. A RECEIVED on the way
 * is parsed into received (CHANNELS_MAX entries) when it is not NULL. */
int handshake_expect(struct chan *c, uint32_t want, struct rec_received_chan *received,
		     bool *refused);
/* Destination: READY, saying which stream and state versions it reads. */
int handshake_ready(struct chan *c);
/* Source: READY, or the reason it is not (a refusal, or versions this
 * ferry does not speak: checked both ways before the guest pauses). */
int handshake_expect_ready(struct chan *c);
/* An ERROR record's sentence as the error ("destination refused: ..."). */
int handshake_refusal(const struct wire_buf *buf, uint32_t len);
/* Destination: tell the source why it stops; best effort. */
void handshake_refuse(struct chan *c, int code, const char *sentence);

#endif
