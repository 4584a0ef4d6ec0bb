#include "control/server.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control/commands.h"
#include "transport/unixsock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"

#define MAX_CLIENTS 16
#define MAX_LINE    (64 << 10)
/* A client that lets this much output pile up unread is dropped: it must
 * not hold up the others. */
#define MAX_BACKLOG (1 << 20)
/* How long a client turned away has to send its request (see turn_away). */
#define TURN_AWAY_MS 100
/* How often answers that come later are looked at. */
#define LATER_POLL_MS 10

struct client {
	int fd; /* -1: a free slot */
	char *in;
	size_t in_len;
	char *out; /* what it has not read yet */
	size_t out_len;
	bool dead;	   /* too slow: dropped by the server thread */
	bool wants_events; /* it sent qmp_capabilities: events as in QMP */
	struct control_later later;
	json_t *later_id; /* the request's id, for the answer that comes later */
};

struct control_server {
	int listen_fd;
	int wake[2]; /* a byte here ends poll(): stop, or output queued */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file's, to remove it only while it is ours */
	ino_t ino;
	struct control_ctx *ctx;
	pthread_t thread;
	bool stopping;
	/* Only the server thread opens and closes client sockets; other threads
	 * (events) queue output under the lock. */
	pthread_mutex_t lock; /* guards every client's fd, out, out_len and dead */
	struct client clients[MAX_CLIENTS];
};

/* Write what c has queued, as far as the socket takes it. Under srv->lock. */
static void flush(struct client *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0) {
			c->dead |= n == 0 || (errno != EAGAIN && errno != EINTR);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
}

/* Queue msg as one line for c and send what can go now. Under srv->lock. */
static void queue_line(struct control_server *srv, struct client *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	char *grown;

	if (!text || c->fd < 0 || c->dead)
		goto out;
	if (c->out_len + len + 1 > MAX_BACKLOG) {
		c->dead = true;
		(void)!write(srv->wake[1], "x", 1);
		goto out;
	}
	grown = realloc(c->out, c->out_len + len + 1);
	if (!grown) {
		c->dead = true;
		goto out;
	}
	c->out = grown;
	memcpy(c->out + c->out_len, text, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	flush(c);
out:
	free(text);
}

static void send_line(struct control_server *srv, struct client *c, json_t *msg)
{
	pthread_mutex_lock(&srv->lock);
	queue_line(srv, c, msg);
	pthread_mutex_unlock(&srv->lock);
}

static void reply(struct control_server *srv, struct client *c, json_t *id, json_t *result,
		  const char *class)
{
	json_t *msg =
		result ? json_pack("{s:o}", "return", result)
		       : json_pack("{s:{s:s,s:s}}", "error", "class", class, "desc", err_msg());

	if (id)
		json_object_set(msg, "id", id);
	send_line(srv, c, msg);
	json_decref(msg);
}

static void reply_error(struct control_server *srv, struct client *c, json_t *id, const char *desc)
{
	err_set(-EINVAL, "%s", desc);
	reply(srv, c, id, NULL, "GenericError");
}

static void handle_request(struct control_server *srv, struct client *c, const char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr), *id, *args, *result;
	const char *name, *class = "GenericError";

	if (!req || !json_is_object(req)) {
		reply_error(srv, c, NULL, "request is not a JSON object");
		json_decref(req);
		return;
	}
	id = json_object_get(req, "id");
	name = json_string_value(json_object_get(req, "execute"));
	args = json_object_get(req, "arguments");
	if (!name) {
		reply_error(srv, c, id, "request has no \"execute\" string");
	} else if (args && !json_is_object(args)) {
		reply_error(srv, c, id, "\"arguments\" must be an object");
	} else {
		err_clear();
		pthread_mutex_lock(&srv->ctx->use);
		result = control_execute(srv->ctx, name, args, &class, &c->later);
		pthread_mutex_unlock(&srv->ctx->use);
		if (result && !strcmp(name, "qmp_capabilities")) {
			pthread_mutex_lock(&srv->lock);
			c->wants_events = true;
			pthread_mutex_unlock(&srv->lock);
		}
		if (c->later.active)
			c->later_id = json_incref(id);
		else
			reply(srv, c, id, result, class);
	}
	json_decref(req);
}

/* An answer that was to come later, if it has come. */
static void poll_later(struct control_server *srv, struct client *c)
{
	json_t *result;

	if (!c->later.active || !c->later.poll(srv->ctx, &c->later, &result))
		return;
	c->later.active = false;
	reply(srv, c, c->later_id, result, "GenericError");
	json_decref(c->later_id);
	c->later_id = NULL;
}

static void drop_client(struct control_server *srv, struct client *c)
{
	pthread_mutex_lock(&srv->lock);
	close(c->fd);
	c->fd = -1;
	c->dead = false;
	c->wants_events = false;
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	pthread_mutex_unlock(&srv->lock);
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	c->later.active = false;
	json_decref(c->later_id);
	c->later_id = NULL;
}

/* Serve every complete line, one request at a time: while an answer is to
 * come later, the client's next requests wait in its buffer. */
static void serve_lines(struct control_server *srv, struct client *c)
{
	char *nl;

	while (!c->later.active && (nl = memchr(c->in, '\n', c->in_len))) {
		size_t used = (size_t)(nl + 1 - c->in);

		*nl = '\0';
		if (nl > c->in)
			handle_request(srv, c, c->in);
		c->in_len -= used;
		memmove(c->in, nl + 1, c->in_len);
		c->in[c->in_len] = '\0';
	}
}

/* Read what is there and serve what is complete. */
static void read_client(struct control_server *srv, struct client *c)
{
	ssize_t n;

	if (!c->in && !(c->in = malloc(MAX_LINE + 1)))
		return drop_client(srv, c);
	n = recv(c->fd, c->in + c->in_len, MAX_LINE - c->in_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return drop_client(srv, c);
	if (n > 0)
		c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	serve_lines(srv, c);
	if (c->in_len == MAX_LINE && !memchr(c->in, '\n', c->in_len)) {
		reply_error(srv, c, NULL, "request line longer than 64 KiB");
		drop_client(srv, c);
	}
}

/* The socket file is 0600, but a descriptor can be passed on: check who is
 * really at the other end. Root and our own user may drive the VM. */
static bool trusted_peer(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

/* Say desc to a client we do not keep, and close it. */
static void turn_away(int fd, const char *desc)
{
	json_t *msg = json_pack("{s:{s:s,s:s}}", "error", "class", "GenericError", "desc", desc);
	char *text = json_dumps(msg, JSON_COMPACT);

	struct pollfd p = { .fd = fd, .events = POLLIN };
	char drain[MAX_LINE];

	if (text && send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		(void)!send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(text);
	json_decref(msg);
	/* A unix socket closed with unread input resets its peer, which would
	 * then lose the answer: end our side, and take its request first. */
	shutdown(fd, SHUT_WR);
	if (poll(&p, 1, TURN_AWAY_MS) == 1)
		(void)!recv(fd, drain, sizeof(drain), MSG_DONTWAIT);
	close(fd);
}

static void accept_client(struct control_server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	json_t *hello;

	if (fd < 0)
		return;
	if (!trusted_peer(fd))
		return turn_away(
			fd, "permission denied: only the user running this ferry may control it");
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (srv->clients[i].fd >= 0)
			continue;
		pthread_mutex_lock(&srv->lock);
		srv->clients[i].fd = fd;
		pthread_mutex_unlock(&srv->lock);
		hello = control_greeting();
		send_line(srv, &srv->clients[i], hello);
		json_decref(hello);
		return;
	}
	turn_away(fd, "too many control clients");
}

/* The poll set: the listener, the wake pipe, then every client (for
 * output too when some is queued). Returns the poll timeout. */
static int poll_set(struct control_server *srv, struct pollfd *pfd)
{
	int timeout = CONTROL_SAMPLE_MS;

	pfd[0] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &srv->clients[i];

		short in = c->in_len < MAX_LINE ? POLLIN : 0; /* full: waits for a later answer */

		pfd[i + 2] = (struct pollfd){ .fd = c->fd,
					      .events = (short)(in | (c->out_len ? POLLOUT : 0)) };
		if (c->later.active)
			timeout = LATER_POLL_MS;
	}
	pthread_mutex_unlock(&srv->lock);
	return timeout;
}

static void serve_clients(struct control_server *srv, const struct pollfd *pfd)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &srv->clients[i];
		bool dead;

		if (c->fd < 0)
			continue;
		if (pfd[i + 2].revents & POLLOUT) {
			pthread_mutex_lock(&srv->lock);
			flush(c);
			pthread_mutex_unlock(&srv->lock);
		}
		if (pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR))
			read_client(srv, c);
		if (c->fd >= 0) {
			pthread_mutex_lock(&srv->ctx->use);
			poll_later(srv, c);
			pthread_mutex_unlock(&srv->ctx->use);
		}
		pthread_mutex_lock(&srv->lock);
		dead = c->fd >= 0 && c->dead;
		pthread_mutex_unlock(&srv->lock);
		if (dead) {
			log_warn("control: dropped a client that did not read its answers");
			drop_client(srv, c);
		}
	}
}

static void emit_event(void *srv, const char *name, void *data)
{
	control_event(srv, name, data);
}

static void *server_thread(void *arg)
{
	struct control_server *srv = arg;
	uint64_t next_sample = time_now_ns();
	bool busy = false; /* a migration runs: look at it often */
	const struct event_sink sink = { emit_event, srv };

	pthread_setname_np(pthread_self(), "control");
	for (;;) {
		struct pollfd pfd[MAX_CLIENTS + 2];
		int timeout = poll_set(srv, pfd);
		char drain[64];

		if (busy && timeout > LATER_POLL_MS)
			timeout = LATER_POLL_MS;
		if (poll(pfd, MAX_CLIENTS + 2, timeout) < 0 && errno != EINTR)
			break;
		if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
			break;
		if (pfd[1].revents)
			(void)!read(srv->wake[0], drain, sizeof(drain));
		if (pfd[0].revents & POLLIN)
			accept_client(srv);
		serve_clients(srv, pfd);
		pthread_mutex_lock(&srv->ctx->use);
		busy = control_events(srv->ctx, &sink);
		pthread_mutex_unlock(&srv->ctx->use);
		if (time_now_ns() >= next_sample) {
			pthread_mutex_lock(&srv->ctx->use);
			control_sample(srv->ctx);
			pthread_mutex_unlock(&srv->ctx->use);
			next_sample = time_now_ns() + CONTROL_SAMPLE_MS * NS_PER_MS;
		}
	}
	return NULL;
}

/* Refuse to take over a socket someone still listens on (a stale one is
 * replaced). */
static int claim_path(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), busy;

	if (fd < 0)
		return -errno;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	busy = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	if (busy)
		return err_set(-EADDRINUSE, "control socket %s is in use by another ferry", path);
	return 0;
}

static int listen_on(const char *path)
{
	int fd, rc;

	/* Checked here too: claim_path copies path into a sockaddr first. */
	if (strlen(path) > UNIXSOCK_PATH_MAX)
		return err_set(-ENAMETOOLONG, "control socket path is longer than %d bytes",
			       UNIXSOCK_PATH_MAX);
	rc = claim_path(path);
	if (rc < 0)
		return rc;
	/* Owner only, whatever the umask: the socket can stop and move the VM. */
	fd = unixsock_listen(path, 0600, 8);
	if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		rc = err_set(-errno, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

int control_start(const char *path, struct control_ctx *ctx, struct control_server **out)
{
	struct control_server *srv = calloc(1, sizeof(*srv));
	struct stat st;
	int rc;

	if (!srv)
		return err_set(-ENOMEM, "out of memory");
	srv->ctx = ctx;
	pthread_mutex_init(&srv->lock, NULL);
	for (int i = 0; i < MAX_CLIENTS; i++)
		srv->clients[i].fd = -1;
	srv->listen_fd = listen_on(path);
	if (srv->listen_fd < 0) {
		rc = srv->listen_fd;
		goto out_free;
	}
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	if (stat(path, &st) == 0) {
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = err_set(-errno, "pipe: %s", strerror(errno));
		goto out_close;
	}
	rc = pthread_create(&srv->thread, NULL, server_thread, srv);
	if (rc) {
		rc = err_set(-rc, "cannot start the control thread: %s", strerror(rc));
		goto out_pipe;
	}
	*out = srv;
	return 0;
out_pipe:
	close(srv->wake[0]);
	close(srv->wake[1]);
out_close:
	close(srv->listen_fd);
	unlink(path);
out_free:
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	return rc;
}

/* Whether the socket file at srv->path is still the one we bound (a ferry
 * that took over from this one put its own there). */
static bool still_ours(const struct control_server *srv)
{
	struct stat st;

	return stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino;
}

void control_stop(struct control_server *srv)
{
	if (!srv)
		return;
	__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
	(void)!write(srv->wake[1], "x", 1);
	pthread_join(srv->thread, NULL);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (srv->clients[i].fd >= 0)
			drop_client(srv, &srv->clients[i]);
	close(srv->listen_fd);
	close(srv->wake[0]);
	close(srv->wake[1]);
	if (still_ours(srv))
		unlink(srv->path);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

int control_move(struct control_server *srv, const char *path)
{
	if (strlen(path) >= sizeof(srv->path))
		return err_set(-ENAMETOOLONG, "control socket path is longer than %zu bytes",
			       sizeof(srv->path) - 1);
	if (rename(srv->path, path) < 0)
		return err_set(-errno, "cannot move the control socket onto %s: %s", path,
			       strerror(errno));
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	return 0;
}

void control_event(struct control_server *srv, const char *name, void *data)
{
	struct timespec now;
	json_t *msg;

	clock_gettime(CLOCK_REALTIME, &now);
	msg = json_pack("{s:s,s:o,s:{s:I,s:I}}", "event", name, "data", data ? data : json_object(),
			"timestamp", "seconds", (json_int_t)now.tv_sec, "microseconds",
			(json_int_t)(now.tv_nsec / 1000));
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (srv->clients[i].fd >= 0 && srv->clients[i].wants_events)
			queue_line(srv, &srv->clients[i], msg);
	pthread_mutex_unlock(&srv->lock);
	json_decref(msg);
}
