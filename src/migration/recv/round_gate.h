/* The destination's line between rounds across data channels. Each channel
 * ends every round with a ROUND record and then waits here until all the
 * others have ended it too: no page of round r+1 is written before every
 * page of round r is, whichever channel was slower, so a page's older copy
 * never lands after its newer one (DESIGN.md §3). */
#ifndef FERRY_MIGRATION_ROUND_GATE_H
#define FERRY_MIGRATION_ROUND_GATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct round_gate {
	pthread_mutex_t lock;
	pthread_cond_t passed;
	uint32_t channels;
	uint32_t round;	  /* the round in progress */
	uint32_t arrived; /* channels that have ended it */
	bool aborted;
};

void round_gate_init(struct round_gate *g, uint32_t channels);
void round_gate_destroy(struct round_gate *g);
/* A channel ended round: wait for the others. Returns 1 if it had to wait,
 * 0 if it was the last to arrive, -EPROTO (err_msg()) if round is not the
 * one in progress, -ECANCELED once aborted. */
int round_gate_pass(struct round_gate *g, uint32_t round);
/* Rounds every channel has ended. */
uint32_t round_gate_rounds(struct round_gate *g);
/* Wait until every channel has ended rounds rounds: 0, -ETIMEDOUT after
 * timeout_ms, -ECANCELED once aborted. */
int round_gate_wait(struct round_gate *g, uint32_t rounds, int timeout_ms);
/* Release every waiter with -ECANCELED (a channel failed). */
void round_gate_abort(struct round_gate *g);

#endif
