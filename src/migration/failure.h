/* The first failure of work that several threads share (a migration's data
 * channels): its code and sentence are kept, later ones are dropped, so the
 * user reads the cause rather than its echoes. */
#ifndef FERRY_MIGRATION_FAILURE_H
#define FERRY_MIGRATION_FAILURE_H

#include <pthread.h>
#include <stdbool.h>

struct failure {
	pthread_mutex_t lock; /* guards err and why */
	int err;
	char why[512];
};

void failure_init(struct failure *f);
void failure_destroy(struct failure *f);
/* Keep rc and err_msg() unless something failed first; true if this was
 * the first failure. */
bool failure_set(struct failure *f, int rc);
/* The first failure, 0 if none; its sentence back in err_msg(). */
int failure_get(struct failure *f);

#endif
