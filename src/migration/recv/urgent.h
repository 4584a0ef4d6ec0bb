/* Post-copy's urgent channel on the destination: the connection on which
 * the source answers REQUESTs, read by a thread of its own that places the
 * pages as they come (apply.h, placing through recv/postcopy.h) until END,
 * so that an asked-for page never waits behind the push. */
#ifndef FERRY_MIGRATION_RECV_URGENT_H
#define FERRY_MIGRATION_RECV_URGENT_H

#include <stdint.h>

#include "transport/chan.h"

struct guest_mem;
struct postcopy;
struct urgent;

/* Start reading c (the urgent channel joined; taken over) into mem through
 * pc, pages of round; written and damaged as apply.h's. A failure makes
 * main's blocked read fail too, so that the main thread learns it
 * (urgent_finish). */
int urgent_start(struct chan *c, const struct guest_mem *mem, struct postcopy *pc,
		 uint64_t *written, uint64_t *damaged, uint32_t round, struct chan *main,
		 struct urgent **out);
/* Its failure so far, 0 if none (it may still be reading). */
int urgent_error(struct urgent *u);
/* Wait for END (or a failure): 0 or its -errno with the sentence. */
int urgent_finish(struct urgent *u);
/* Stop it (if it still reads) and free. */
void urgent_free(struct urgent *u);

#endif
