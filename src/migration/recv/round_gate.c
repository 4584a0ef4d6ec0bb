#include "migration/recv/round_gate.h"

#include <errno.h>

#include "util/error.h"
#include "util/time.h"

void round_gate_init(struct round_gate *g, uint32_t channels)
{
	pthread_mutex_init(&g->lock, NULL);
	time_cond_init(&g->passed);
	g->channels = channels;
	g->round = 0;
	g->arrived = 0;
	g->aborted = false;
}

void round_gate_destroy(struct round_gate *g)
{
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->passed);
}

int round_gate_pass(struct round_gate *g, uint32_t round)
{
	int rc = 0;

	pthread_mutex_lock(&g->lock);
	if (g->aborted)
		rc = -ECANCELED;
	else if (round != g->round)
		rc = err_set(-EPROTO, "a channel ended round %u while round %u was in progress",
			     round, g->round);
	else if (++g->arrived == g->channels) {
		g->arrived = 0;
		g->round++;
		pthread_cond_broadcast(&g->passed);
	} else {
		rc = 1;
		while (g->round == round && !g->aborted)
			pthread_cond_wait(&g->passed, &g->lock);
		if (g->aborted)
			rc = -ECANCELED;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

uint32_t round_gate_rounds(struct round_gate *g)
{
	uint32_t r;

	pthread_mutex_lock(&g->lock);
	r = g->round;
	pthread_mutex_unlock(&g->lock);
	return r;
}

void round_gate_abort(struct round_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->aborted = true;
	pthread_cond_broadcast(&g->passed);
	pthread_mutex_unlock(&g->lock);
}

int round_gate_wait(struct round_gate *g, uint32_t rounds, int timeout_ms)
{
	struct timespec until = time_deadline_in_ms(timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&g->lock);
	while (g->round < rounds && !g->aborted && rc == 0)
		rc = pthread_cond_timedwait(&g->passed, &g->lock, &until);
	if (g->aborted)
		rc = -ECANCELED;
	else if (g->round < rounds)
		rc = err_set(-ETIMEDOUT, "the data channels did not end round %u within %.1f s",
			     rounds - 1, timeout_ms / 1000.0);
	pthread_mutex_unlock(&g->lock);
	return rc;
}
