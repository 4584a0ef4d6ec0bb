/* The destination's data channels: accepting them (each must present the
 * migration's token), and one thread per channel that writes its pages
 * into guest memory, lining up with the others at every round's end
 * (recv/round_gate.h) until END.
 *
 * The set owns its channels and threads; the destination's main thread
 * calls everything and frees the set before it closes the main channel
 * (which a failing channel shuts for reading, to wake it). */
#ifndef FERRY_MIGRATION_RECV_RECEIVER_H
#define FERRY_MIGRATION_RECV_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/format.h"
#include "transport/chan.h"
#include "vm/memory.h"

struct receivers;
struct cancel;
struct tls_creds;
struct postcopy;

/* Accept the data channels CHANNELS announced on lfd (uri: how it listens),
 * all within timeout_ms, unless cancel fires; each speaks TLS with tls
 * (NULL: none) as the source peer, as the main channel does; connections
 * that do not, or present a wrong token, are closed and logged. Returns 0
 * or -errno with err_msg(); *out must be freed either way. */
int receivers_accept(int lfd, const char *uri, const struct rec_channels *ch, int timeout_ms,
		     const struct cancel *cancel, const struct tls_creds *tls, const char *peer,
		     struct receivers **out);
/* Start writing pages into mem (the bitmaps are apply.h's; waiting counts
 * the channels waiting for the link, chan.h; each keeps main's company, so
 * that none times out while another hears the source). A failing channel stops the
 * others and makes main's blocked read fail, so that the main thread
 * learns it. */
int receivers_start(struct receivers *r, const struct guest_mem *mem, uint64_t *written,
		    uint64_t *damaged, uint32_t *waiting, struct chan *main);
/* Wait until every channel has read END; the first failure, with its
 * sentence, or 0. */
int receivers_finish(struct receivers *r);
/* The first failure so far (0 if none), its sentence in err_msg(). */
int receivers_error(struct receivers *r);
uint64_t receivers_pages(struct receivers *r);
/* LPAGES pages that failed their own hash, over all channels. */
uint64_t receivers_damaged_copies(struct receivers *r);
uint32_t receivers_count(const struct receivers *r);
/* Wait until every channel has ended rounds rounds (a failed channel's
 * error, or -ETIMEDOUT after timeout_ms). */
int receivers_wait_rounds(struct receivers *r, uint32_t rounds, int timeout_ms);
/* From now on every page is placed through pc (apply.h). */
void receivers_place(struct receivers *r, struct postcopy *pc);
/* Before receivers_start, for a set that joins a post-copy taken up again
 * after a broken link: its pages come in round, placed through pc. */
void receivers_take_up(struct receivers *r, struct postcopy *pc, uint32_t round);
/* Rounds every channel has ended. */
uint32_t receivers_rounds(struct receivers *r);
/* Per-channel account for the RECEIVED record. */
void receivers_account(struct receivers *r, struct rec_received_chan *out);
void receivers_free(struct receivers *r);

#endif
