/* The sending side of a live migration: setup -> pre-copy rounds ->
 * switchover -> completed, or failed / cancelled with the guest still
 * running here, or unknown when COMMIT went out and no answer came back.
 * Runs on its own thread; the control layer reads its stats. */
#ifndef FERRY_MIGRATION_SEND_SOURCE_H
#define FERRY_MIGRATION_SEND_SOURCE_H

#include "migration/migration.h"

struct vm;
struct mig_source;

/* Start migrating vm to uri. Returns 0, or -errno with err_msg() when the
 * migration could not even start (bad URI). */
int mig_source_start(struct vm *vm, const char *uri, const struct mig_params *p,
		     struct mig_source **out);
/* Ask a running migration to stop; it ends as cancelled (before COMMIT). */
void mig_source_cancel(struct mig_source *m);
/* Switch to post-copy at the end of the round in progress (the migration
 * must allow it). 0, or -EINVAL with a sentence. */
int mig_source_start_postcopy(struct mig_source *m);
/* migrate --resume: a post-copy paused on a broken link takes it up again
 * at uri (where the destination's migrate-recover listens). 0, or -EINVAL
 * with a sentence when none is paused. A failed try pauses it again. */
int mig_source_resume(struct mig_source *m, const char *uri);
/* Change the bandwidth limit and downtime target of a running migration. */
void mig_source_set_params(struct mig_source *m, const struct mig_params *p);
struct mig_stats mig_source_stats(struct mig_source *m);
/* The statuses the migration went through since *seen (mig_trail_read). */
uint32_t mig_source_trail(struct mig_source *m, uint32_t *seen, enum mig_status *out, uint32_t max);
/* An unknown outcome the operator settled by resuming the guest here (after
 * fencing the destination): the migration failed, for why. */
void mig_source_settle(struct mig_source *m, const char *why);
/* Wait for the migration thread and free it. */
void mig_source_free(struct mig_source *m);

#endif
