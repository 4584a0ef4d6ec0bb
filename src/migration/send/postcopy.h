/* The source's side of post-copy (docs/migration.md, "Post-copy"): when to
 * switch, and the switch: pause, send the state and which pages are still
 * to come, COMMIT; then push those pages while the return path
 * (send/requests.h) answers the ones the destination asks for, until
 * PLACED. */
#ifndef FERRY_MIGRATION_SEND_POSTCOPY_H
#define FERRY_MIGRATION_SEND_POSTCOPY_H

#include <stdbool.h>
#include <stdint.h>

struct mig_source;

/* Round 0 of a guest allowed post-copy under auto, half a second in: how
 * fast it dirties against how fast the link carries (converge.h). The
 * pages dirtied so far wait in m->carry for the next round, or for
 * post-copy. True to switch now (m->to_postcopy): round 0 is cut short. */
bool postcopy_early(struct mig_source *m, uint64_t t0);
/* Switch to post-copy after round - 1 and see it through: 0 once the
 * destination has every page, or -errno with the reason (m->lost if the
 * guest ran there). */
int postcopy_switch(struct mig_source *m, uint32_t round);

#endif
