/* The statuses a migration went through (migration.h, struct mig_trail). */
#include "migration/migration.h"

void mig_trail_note(struct mig_trail *t, enum mig_status s)
{
	t->status[t->total++ % MIG_TRAIL] = s;
}

uint32_t mig_trail_read(const struct mig_trail *t, uint32_t *seen, enum mig_status *out,
			uint32_t max)
{
	uint32_t n = 0;

	if (t->total - *seen > MIG_TRAIL) /* fell behind: the oldest are gone */
		*seen = t->total - MIG_TRAIL;
	for (; *seen < t->total && n < max; (*seen)++)
		out[n++] = t->status[*seen % MIG_TRAIL];
	return n;
}
