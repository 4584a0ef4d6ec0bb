/* A broken post-copy link, taken up again (send/recover.c). */
#ifndef FERRY_MIGRATION_SEND_RECOVER_H
#define FERRY_MIGRATION_SEND_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

struct mig_source;

/* Whether post-copy's failure rc leaves the guest to be taken up again:
 * the link broke after COMMIT, and the destination did not give up. */
bool postcopy_recoverable(const struct mig_source *m, int rc);
/* The link broke (err_msg() says how): let go of it, wait in
 * postcopy-paused for migrate --resume, and link again there, as many
 * tries as it takes: 0 with m->dirty the pages the destination lacks and
 * the pipeline and its channels on the new link, or -errno once given up (a cancel,
 * --recover-timeout from now). */
int postcopy_relink(struct mig_source *m, uint32_t round);

#endif
