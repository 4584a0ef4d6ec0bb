/* A migration channel: one connected stream socket, full duplex (the return
 * path runs the other way), with a stall timeout on every read and write, an
 * optional rate limit on writes, and an optional cancel (util/cancel.h):
 * once it fires, every wait on the channel (connect, accept, read, write,
 * the rate limit's pause) fails with -ECANCELED. */
#ifndef FERRY_TRANSPORT_CHAN_H
#define FERRY_TRANSPORT_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "transport/ratelimit.h"

#define CHAN_DEFAULT_TIMEOUT_MS 10000
#define CHAN_MAX_IOV		1024
#define CHAN_NOTSENT_LOWAT	(256 << 10)

struct cancel;
struct tls_creds;
struct tls_session;

/* A time past which a channel gives up: every read and every wait on it
 * fails then (-ETIMEDOUT), however the peer trickles bytes. Set by the
 * thread that owns the channel, phase by phase (chan_set_deadline). */
struct chan_deadline {
	uint64_t at_ns;	  /* 0: none */
	const char *what; /* the phase, for the sentence: "the handshake" */
	uint32_t seconds;
};

struct chan {
	int fd;
	int timeout_ms;		     /* a read or write that makes no progress this long fails */
	const struct cancel *cancel; /* NULL: none */
	struct ratelimit rl;
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t write_wait_ns; /* writes waited this long for the socket or the rate limit */
	uint64_t skipped;	/* bytes of records read and skipped (migration/wire.h) */
	struct chan_deadline deadline;
	struct tls_session *tls; /* NULL: plain; else every byte goes through it */
	/* NULL, or a channel (this one, or another to the same peer) on which
	 * the peer only speaks to say it failed: a write that waits ends as
	 * soon as something arrives there, rather than stall until the
	 * timeout because the peer stopped reading. */
	const struct chan *speaker;
	/* NULL, or a count shared by channels: one more while this one waits
	 * for something to read (a sign that its reader is idle). */
	uint32_t *waiting;
	/* NULL, or a byte count shared by the channels of one migration: each
	 * adds what it receives, and a wait on one that hears nothing is no
	 * stall while the count grows (the main channel is silent while data
	 * channels carry a round, however long the round lasts). */
	uint64_t *company;
	bool by_ref; /* pages may go by reference (transport/splice.h) */
	bool piped;  /* pipe[] is open */
	int pipe[2]; /* for pages by reference */
};

/* Whether uri can be connected to at all: it parses, and fd:N is a
 * connected stream socket. Returns 0 or -errno with err_msg(). */
int chan_check_uri(const char *uri);
/* Whether uri is a unix socket: unix:PATH, or fd:N of one. */
bool chan_uri_is_unix(const char *uri);
/* Connect to uri (tcp:, unix:, fd:) within timeout_ms, unless cancel (may be
 * NULL) fires first; the channel keeps both. Returns 0 or -errno with
 * err_msg(). */
int chan_connect(struct chan *c, const char *uri, int timeout_ms, const struct cancel *cancel);
/* Listen on uri; returns the listening fd or -errno. fd:N listens on nothing:
 * it returns N, already connected (see chan_accept). */
int chan_listen(const char *uri);
/* Accept one connection on lfd, waiting at most timeout_ms (-1: forever)
 * unless cancel fires (-ECANCELED); the channel keeps both. */
int chan_accept(struct chan *c, int lfd, const char *uri, int timeout_ms,
		const struct cancel *cancel);
void chan_init_fd(struct chan *c, int fd);
/* TLS on c from now with credentials t (transport/tls.h; NULL: none, c
 * stays plain): the handshake, within c's timeout, deadline and cancel;
 * peer: NULL, or the identity the peer must have (the one a migration's
 * main channel authenticated: its other channels must be the same
 * source's). Returns 0 or -errno with err_msg(); a peer refused after the
 * handshake keeps the session, so that the refusal reaches it. */
int chan_start_tls(struct chan *c, const struct tls_creds *t, const char *peer);
/* From now, what (a phase: "the handshake") may last seconds on c; 0: no
 * deadline. */
void chan_set_deadline(struct chan *c, const char *what, uint32_t seconds);

/* Write all of iov[0..n), n <= CHAN_MAX_IOV (blocking, rate-limited). */
int chan_writev(struct chan *c, const struct iovec *iov, int n);
/* The same, but the whole pages in iov (base and length page multiples)
 * may go by reference where the socket allows it (transport/splice.h): for
 * memory whose later change the peer tolerates (a running guest's pages,
 * each with its own hash). */
int chan_writev_ref(struct chan *c, const struct iovec *iov, int n);
/* The same, but fd (a descriptor of this process) goes with the first byte
 * (SCM_RIGHTS: a unix socket only); not rate-limited. */
int chan_writev_fd(struct chan *c, const struct iovec *iov, int n, int fd);
/* Wait until c is ready for events (POLLIN, POLLOUT), within its timeout
 * (renewed while its company grows), unless its cancel fires or (writing)
 * its speaker speaks. */
int chan_wait_ready(struct chan *c, short events);
/* The first bytes that came, left to be read: up to len, once something came
 * (within c's timeout); -errno with err_msg() if nothing did. */
ssize_t chan_peek(struct chan *c, void *buf, size_t len);
/* Read exactly len bytes. */
int chan_read(struct chan *c, void *buf, size_t len);
/* Read exactly what iov[0..n) holds, n <= CHAN_MAX_IOV (iov is used up). */
int chan_readv(struct chan *c, struct iovec *iov, int n);
/* Read exactly len bytes whose first carries one descriptor (chan_writev_fd),
 * into *fd (close-on-exec; -1 on failure). */
int chan_read_fd(struct chan *c, void *buf, size_t len, int *fd);
/* Bytes written but not yet delivered (still in the kernel's queue). */
uint64_t chan_queued(const struct chan *c);
/* Make blocked reads and writes on c fail now. Only for the thread that
 * owns c or threads it joins before chan_close (others: a cancel). */
void chan_shutdown(struct chan *c);
/* Make a blocked read fail now, leaving writes possible (to send an ERROR);
 * the same rule. */
void chan_shutdown_read(struct chan *c);
void chan_close(struct chan *c);
/* Whether rc says the link broke (reset, closed, stalled, unreachable),
 * rather than a peer refusing or a check failing. */
bool chan_broken(int rc);

#endif
