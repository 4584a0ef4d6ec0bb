/* The destination's data channels: accepting them (each must present the
 * migration's token), and one thread per channel that writes its pages
 * into guest memory, lining up with the others at every round's end
 * (migration/round_gate.h) until END. */
#ifndef FERRY_MIGRATION_RECEIVER_H
#define FERRY_MIGRATION_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/format.h"
#include "transport/chan.h"
#include "vm/memory.h"

struct receivers;

/* Accept the data channels CHANNELS announced on lfd (uri: how it listens),
 * each within timeout_ms; connections with a wrong token are closed and
 * logged. Returns 0 or -errno with err_msg(); *out must be freed either way. */
int receivers_accept(int lfd, const char *uri, const struct rec_channels *ch, int timeout_ms,
		     struct receivers **out);
/* Start writing pages into mem. A failing channel stops the others and
 * makes main's blocked read fail, so that the main thread learns it. */
int receivers_start(struct receivers *r, const struct guest_mem *mem, uint64_t *written,
		    struct chan *main);
/* Wait until every channel has read END; the first failure, with its
 * sentence, or 0. */
int receivers_finish(struct receivers *r);
/* The first failure so far (0 if none), its sentence in err_msg(). */
int receivers_error(struct receivers *r);
uint64_t receivers_pages(struct receivers *r);
uint32_t receivers_count(const struct receivers *r);
/* Rounds every channel has ended. */
uint32_t receivers_rounds(struct receivers *r);
/* Per-channel account for the RECEIVED record. */
void receivers_account(struct receivers *r, struct rec_received_chan *out);
void receivers_free(struct receivers *r);

#endif
