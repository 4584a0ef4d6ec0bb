#include "migration/failure.h"

#include <stdio.h>
#include <string.h>

#include "util/error.h"

void failure_init(struct failure *f)
{
	pthread_mutex_init(&f->lock, NULL);
	f->err = 0;
	f->why[0] = '\0';
}

void failure_destroy(struct failure *f)
{
	pthread_mutex_destroy(&f->lock);
}

bool failure_set(struct failure *f, int rc)
{
	bool first;

	pthread_mutex_lock(&f->lock);
	first = !f->err;
	if (first) {
		f->err = rc;
		snprintf(f->why, sizeof(f->why), "%s", err_msg());
	}
	pthread_mutex_unlock(&f->lock);
	return first;
}

int failure_get(struct failure *f)
{
	int rc;

	pthread_mutex_lock(&f->lock);
	rc = f->err;
	if (rc)
		err_set(rc, "%s", f->why);
	pthread_mutex_unlock(&f->lock);
	return rc;
}
