/* Monotonic time in nanoseconds, and small conversions. */
#ifndef FERRY_UTIL_TIME_H
#define FERRY_UTIL_TIME_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

static inline uint64_t time_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* CPU time this thread has used. */
static inline uint64_t time_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline double time_ms_since(uint64_t start_ns)
{
	return (double)(time_now_ns() - start_ns) / 1e6;
}

/* Absolute CLOCK_MONOTONIC deadline as a timespec, for pthread_cond_timedwait. */
static inline struct timespec time_deadline_ts(uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ns / NS_PER_S),
			       .tv_nsec = (long)(deadline_ns % NS_PER_S) };
	return ts;
}

/* The deadline timeout_ms from now, for a condition variable made with
 * time_cond_init. */
static inline struct timespec time_deadline_in_ms(int timeout_ms)
{
	return time_deadline_ts(time_now_ns() + (uint64_t)timeout_ms * NS_PER_MS);
}

/* A condition variable whose timed waits count CLOCK_MONOTONIC (so that
 * time_deadline_ts applies, and a clock set by hand changes nothing). */
void time_cond_init(pthread_cond_t *c);

/* Sleep for ns nanoseconds (restarted after signals). */
void time_sleep_ns(uint64_t ns);

#endif
