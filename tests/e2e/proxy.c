/* A man in the middle for the end-to-end tests: it forwards every
 * connection to a target, record by record, and misbehaves as asked:
 *   proxy LISTEN_URI TARGET_URI [OPTION...]
 *   --slow N:MS     connection N (0 is the first accepted) is a slow data
 *                   channel: it carries the source's records at 1 MB/s, and
 *                   each ROUND or END MS late (so that it always ends its
 *                   rounds after the others, without ever holding them up
 *                   for long: a queue of small records costs little)
 *   --corrupt N:K   flips a byte in the body of the K-th record (from 1) the
 *                   source sends on connection N: corruption in transit
 *   --hold TYPE     holds the first record of TYPE sent on connection 0 (by
 *                   either side) until SIGUSR1 (then forwards it)
 *   --swallow TYPE  drops the first record of TYPE the destination sends on
 *                   connection 0, and hangs up on the source
 *   --cut PERMILLE  post-copy: once the destination said RESUMED and the
 *                   pages the source sent after POSTCOPY reach PERMILLE/1000
 *                   of the pages it named, drops that record and exits:
 *                   every connection breaks (a link to be recovered)
 *   --fault KIND:DIR:N:K  at the K-th record (from 1) that DIR (src: the
 *                   source, dst: the destination) sends on connection N:
 *                   cut: that connection closes both ways (FIN);
 *                   reset: every connection is reset (RST) and the proxy exits;
 *                   stall: that direction stops, the record held for good;
 *                   corrupt: a byte of the record flips
 *                   (tests/soak: faults at random points)
 * It prints "ready" once it listens, and serves until killed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/wire.h"
#include "util/error.h"
#include "util/time.h"

#define HOLD_MAX_S 120

static struct {
	int slow_conn, slow_ms;
	int corrupt_conn, corrupt_record;
	uint32_t hold_type, swallow_type;
	int cut_permille;
	const char *target;
	char fault[8]; /* cut, reset, stall, corrupt; "" none */
	bool fault_from_source;
	int fault_conn, fault_record;
} opt = { -1, 0, -1, 0, 0, 0, 0, NULL, "", false, -1, 0 };

/* Every socket the proxy holds, for --fault reset. */
static struct {
	pthread_mutex_t lock;
	int fd[256];
	int n;
} held = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* --cut: what post-copy has come through. */
static struct {
	pthread_mutex_t lock;
	uint64_t named, sent; /* pages POSTCOPY named, and sent since */
	uint32_t round;	      /* post-copy's */
	bool resumed;
} cut = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int released; /* set by SIGUSR1; read by the holding thread */

/* One direction of one connection. */
struct pipe_end {
	struct chan *from, *to;
	int conn;
	bool from_source; /* the source's side: starts with the stream header */
};

static void on_usr1(int sig)
{
	(void)sig;
	__atomic_store_n(&released, 1, __ATOMIC_RELEASE);
}

static int read_record(struct chan *c, uint8_t **buf, size_t *len)
{
	struct rec_header hdr;
	size_t body;

	if (chan_read(c, &hdr, sizeof(hdr)) < 0)
		return -1;
	body = rec_padded(hdr.length);
	if (body > REC_MAX_BODY + 8)
		return -1;
	*buf = realloc(*buf, sizeof(hdr) + body);
	memcpy(*buf, &hdr, sizeof(hdr));
	*len = sizeof(hdr) + body;
	return chan_read(c, *buf + sizeof(hdr), body);
}

static bool is_pages(uint32_t type)
{
	return type == REC_PAGES || type == REC_LPAGES || type == REC_ZPAGES;
}

/* --cut: count post-copy's pages; exit (the kernel breaks every
 * connection) before the record to cut at. */
static void cut_here(const struct pipe_end *e, const uint8_t *rec, uint32_t type)
{
	const uint32_t *fixed = (const uint32_t *)(rec + 16); /* count, round */
	pthread_mutex_lock(&cut.lock);
	if (e->from_source && type == REC_POSTCOPY) {
		const struct rec_postcopy *pc = (const void *)(rec + 16);

		for (uint32_t w = 0; w < (pc->count + 63) / 64; w++)
			cut.named += (uint64_t)__builtin_popcountll(pc->bits[w]);
		cut.round = pc->round;
	}
	if (!e->from_source && type == REC_RESUMED)
		cut.resumed = true;
	if (e->from_source && is_pages(type) && cut.named && fixed[1] == cut.round)
		cut.sent += fixed[0];
	if (cut.resumed && is_pages(type) && e->from_source && cut.named &&
	    cut.sent * 1000 >= cut.named * (uint64_t)opt.cut_permille) {
		fprintf(stderr, "proxy: cutting every connection after %llu of %llu pages\n",
			(unsigned long long)cut.sent, (unsigned long long)cut.named);
		_exit(0);
	}
	pthread_mutex_unlock(&cut.lock);
}

static void hold_fd(int fd)
{
	pthread_mutex_lock(&held.lock);
	if (held.n < (int)(sizeof(held.fd) / sizeof(held.fd[0])))
		held.fd[held.n++] = fd;
	pthread_mutex_unlock(&held.lock);
}

/* --fault, on record n of type: 0 forward, 1 drop and hang up (cut). */
static int fault(const struct pipe_end *e, uint8_t *rec, size_t len, uint32_t type, int n)
{
	if (!opt.fault[0] || e->from_source != opt.fault_from_source || e->conn != opt.fault_conn ||
	    n != opt.fault_record)
		return 0;
	fprintf(stderr, "proxy: fault %s on %s conn %d record %d (type %u)\n", opt.fault,
		e->from_source ? "src" : "dst", e->conn, n, type);
	if (!strcmp(opt.fault, "corrupt")) {
		rec[len > 16 ? 16 + (len - 16) / 2 : 8] ^= 0x5a; /* the body, or the checksum */
		return 0;
	}
	if (!strcmp(opt.fault, "reset")) {
		pthread_mutex_lock(&held.lock);
		for (int i = 0; i < held.n; i++)
			setsockopt(held.fd[i], SOL_SOCKET, SO_LINGER,
				   &(struct linger){ .l_onoff = 1, .l_linger = 0 },
				   sizeof(struct linger));
		_exit(0); /* closing them now resets them */
	}
	if (!strcmp(opt.fault, "stall"))
		for (;;)
			pause();
	shutdown(e->from->fd, SHUT_RDWR); /* cut */
	return 1;
}

/* What to do to record number n (from 1) of type: 0 forward, 1 drop and
 * hang up. Holds, delays, damages and cuts on the way. */
static int meddle(const struct pipe_end *e, uint8_t *rec, size_t len, uint32_t type, int n)
{
	static bool held_one, swallowed;

	if (e->from_source && e->conn == opt.slow_conn)
		time_sleep_ns(type == REC_ROUND || type == REC_END
				      ? (uint64_t)opt.slow_ms * NS_PER_MS
				      : (uint64_t)len * 1000); /* 1 MB/s */
	if (e->from_source && e->conn == opt.corrupt_conn && n == opt.corrupt_record && len > 16)
		rec[16 + (len - 16) / 2] ^= 0x5a;
	if (e->conn == 0 && type == opt.hold_type && !held_one) {
		held_one = true;
		fprintf(stderr, "proxy: holding a record of type %u\n", type);
		for (int i = 0;
		     i < HOLD_MAX_S * 100 && !__atomic_load_n(&released, __ATOMIC_ACQUIRE); i++)
			time_sleep_ns(10 * NS_PER_MS);
		fprintf(stderr, "proxy: released it\n");
	}
	if (opt.cut_permille)
		cut_here(e, rec, type);
	if (!e->from_source && e->conn == 0 && type == opt.swallow_type && !swallowed) {
		swallowed = true;
		fprintf(stderr, "proxy: swallowed a record of type %u, hanging up\n", type);
		return 1;
	}
	return fault(e, rec, len, type, n);
}

static void *forward(void *arg)
{
	struct pipe_end *e = arg;
	uint8_t head[16], *rec = NULL;
	size_t len;

	if (e->from_source && (chan_read(e->from, head, sizeof(head)) < 0 ||
			       chan_writev(e->to, &(struct iovec){ head, sizeof(head) }, 1) < 0))
		goto out;
	for (int n = 1; read_record(e->from, &rec, &len) == 0; n++) {
		uint32_t type = ((struct rec_header *)rec)->type;

		if (meddle(e, rec, len, type, n)) {
			shutdown(e->to->fd, SHUT_RDWR); /* the source: hung up on */
			break;
		}
		if (chan_writev(e->to, &(struct iovec){ rec, len }, 1) < 0)
			break;
	}
out:
	/* This direction is over: pass the end on, and let the other direction
	 * finish what is in flight (an ERROR on its way back, say). */
	free(rec);
	shutdown(e->to->fd, SHUT_WR);
	shutdown(e->from->fd, SHUT_RD);
	return NULL;
}

static void serve(const struct chan *accepted, int conn)
{
	struct chan *src = malloc(sizeof(*src)), *dst = calloc(1, sizeof(*dst));
	struct pipe_end *a = calloc(2, sizeof(*a));
	pthread_t t;

	*src = *accepted;
	if (chan_connect(dst, opt.target, 10000, NULL) < 0) {
		fprintf(stderr, "proxy: %s\n", err_msg());
		chan_close(src);
		return;
	}
	src->timeout_ms = dst->timeout_ms = 3600 * 1000;
	hold_fd(src->fd);
	hold_fd(dst->fd);
	a[0] = (struct pipe_end){ src, dst, conn, true };
	a[1] = (struct pipe_end){ dst, src, conn, false };
	pthread_create(&t, NULL, forward, &a[0]);
	pthread_detach(t);
	pthread_create(&t, NULL, forward, &a[1]);
	pthread_detach(t);
}

static int parse_pair(const char *arg, int *a, int *b)
{
	return sscanf(arg, "%d:%d", a, b) == 2 ? 0 : -1;
}

static int parse_fault(const char *arg)
{
	char dir[4];

	if (sscanf(arg, "%7[a-z]:%3[a-z]:%d:%d", opt.fault, dir, &opt.fault_conn,
		   &opt.fault_record) != 4 ||
	    (strcmp(opt.fault, "cut") && strcmp(opt.fault, "reset") && strcmp(opt.fault, "stall") &&
	     strcmp(opt.fault, "corrupt")) ||
	    (strcmp(dir, "src") && strcmp(dir, "dst")))
		return -1;
	opt.fault_from_source = !strcmp(dir, "src");
	return 0;
}

static int parse(int argc, char **argv)
{
	for (int i = 3; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		int rc = 0;

		if (!strcmp(o, "--slow"))
			rc = parse_pair(v, &opt.slow_conn, &opt.slow_ms);
		else if (!strcmp(o, "--corrupt"))
			rc = parse_pair(v, &opt.corrupt_conn, &opt.corrupt_record);
		else if (!strcmp(o, "--hold"))
			opt.hold_type = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(o, "--swallow"))
			opt.swallow_type = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(o, "--cut"))
			opt.cut_permille = atoi(v);
		else if (!strcmp(o, "--fault"))
			rc = parse_fault(v);
		else
			rc = -1;
		if (rc < 0)
			return -1;
	}
	return argc >= 3 && argc % 2 == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int lfd;

	if (parse(argc, argv) < 0) {
		fprintf(stderr, "usage: proxy LISTEN_URI TARGET_URI [--slow N:MS] [--corrupt N:K] "
				"[--hold TYPE] [--swallow TYPE] [--cut PERMILLE] "
				"[--fault cut|reset|stall|corrupt:src|dst:N:K]\n");
		return 2;
	}
	opt.target = argv[2];
	signal(SIGUSR1, on_usr1);
	signal(SIGPIPE, SIG_IGN);
	lfd = chan_listen(argv[1]);
	if (lfd < 0) {
		fprintf(stderr, "proxy: %s\n", err_msg());
		return 1;
	}
	/* Small receive buffers (inherited by TCP connections): a slow channel
	 * must not hide its slowness in the kernel's queue. */
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &(int){ 64 << 10 }, sizeof(int));
	printf("ready\n");
	fflush(stdout);
	for (int conn = 0;; conn++) {
		struct chan c;

		if (chan_accept(&c, lfd, argv[1], -1, NULL) < 0)
			conn--; /* a signal: try again */
		else
			serve(&c, conn);
	}
}
