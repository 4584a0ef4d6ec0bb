/* A cancel signal that any number of threads can wait on together with
 * their sockets: an eventfd that, once fired, stays readable until reset,
 * so every poll() that includes it returns. Firing touches no socket, so a
 * thread that cancels never races with the thread that closes one. */
#ifndef FERRY_UTIL_CANCEL_H
#define FERRY_UTIL_CANCEL_H

#include <stdbool.h>

struct cancel {
	int fd;
};

/* Returns 0 or -errno with err_msg(). */
int cancel_init(struct cancel *c);
void cancel_destroy(struct cancel *c);
/* Fire: every wait that polls c->fd ends. Async-signal-safe. */
void cancel_fire(struct cancel *c);
/* Quiet again, for the next piece of work. */
void cancel_reset(struct cancel *c);
bool cancel_fired(const struct cancel *c);
/* Sleep ns, or less if c fires (c may be NULL). Returns true if it fired. */
bool cancel_sleep_ns(const struct cancel *c, unsigned long long ns);

#endif
