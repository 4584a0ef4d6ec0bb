/* A token bucket for max-bandwidth: callers ask before sending and are made
 * to sleep as long as the rate requires. */
#ifndef FERRY_TRANSPORT_RATELIMIT_H
#define FERRY_TRANSPORT_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	uint64_t rate_bps; /* bytes per second; 0 = unlimited */
	double tokens;	   /* bytes that may go now; negative = debt */
	uint64_t last_ns;
};

void ratelimit_init(struct ratelimit *rl, uint64_t rate_bps);
void ratelimit_set(struct ratelimit *rl, uint64_t rate_bps);
/* Take bytes from the bucket; returns how many ns the caller must wait first. */
uint64_t ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);

#endif
