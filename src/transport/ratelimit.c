#include "transport/ratelimit.h"

/* The bucket holds at most 50 ms of traffic: bursts stay short. */
#define BURST_NS 50000000ull

void ratelimit_init(struct ratelimit *rl, uint64_t rate_bps)
{
	rl->rate_bps = rate_bps;
	rl->tokens = 0;
	rl->last_ns = 0;
}

void ratelimit_set(struct ratelimit *rl, uint64_t rate_bps)
{
	rl->rate_bps = rate_bps;
}

uint64_t ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns)
{
	double burst = (double)rl->rate_bps * BURST_NS / 1e9;

	if (!rl->rate_bps)
		return 0;
	if (rl->last_ns)
		rl->tokens += (double)(now_ns - rl->last_ns) * (double)rl->rate_bps / 1e9;
	else
		rl->tokens = burst;
	if (rl->tokens > burst)
		rl->tokens = burst;
	rl->last_ns = now_ns;
	rl->tokens -= (double)bytes;
	if (rl->tokens >= 0)
		return 0;
	return (uint64_t)(-rl->tokens * 1e9 / (double)rl->rate_bps);
}
