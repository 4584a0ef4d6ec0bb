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
#include "util/error.h"
#include "util/log.h"
#include "util/time.h"

#define MAX_CLIENTS 16
#define MAX_LINE    (64 << 10)

struct client {
	int fd;
	char *buf;
	size_t len;
};

struct control_server {
	int listen_fd;
	int wake[2]; /* a byte here ends poll(): stop, or an event queued */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_ctx *ctx;
	pthread_t thread;
	pthread_mutex_t lock; /* clients' fds, for events from other threads */
	bool stopping;
	struct client clients[MAX_CLIENTS];
};

static void send_line(int fd, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;

	if (!text)
		return;
	len = strlen(text);
	text[len++] = '\n'; /* json_dumps leaves room: it NUL-terminates */
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break; /* a client that went away is reaped by the poll loop */
		off += (size_t)n;
	}
	free(text);
}

static void reply_error(int fd, json_t *id, const char *class, const char *desc)
{
	json_t *msg = json_pack("{s:{s:s,s:s}}", "error", "class", class, "desc", desc);

	if (id)
		json_object_set(msg, "id", id);
	send_line(fd, msg);
	json_decref(msg);
}

static void handle_request(struct control_server *srv, int fd, const char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr), *id, *args, *result;
	const char *name, *class = "GenericError";

	if (!req || !json_is_object(req)) {
		reply_error(fd, NULL, "GenericError", "request is not a JSON object");
		json_decref(req);
		return;
	}
	id = json_object_get(req, "id");
	name = json_string_value(json_object_get(req, "execute"));
	args = json_object_get(req, "arguments");
	if (!name) {
		reply_error(fd, id, "GenericError", "request has no \"execute\" string");
	} else if (args && !json_is_object(args)) {
		reply_error(fd, id, "GenericError", "\"arguments\" must be an object");
	} else {
		err_clear();
		result = control_execute(srv->ctx, name, args, &class);
		if (result) {
			json_t *msg = json_pack("{s:o}", "return", result);

			if (id)
				json_object_set(msg, "id", id);
			send_line(fd, msg);
			json_decref(msg);
		} else {
			reply_error(fd, id, class, err_msg());
		}
	}
	json_decref(req);
}

static void drop_client(struct control_server *srv, struct client *c)
{
	pthread_mutex_lock(&srv->lock);
	close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&srv->lock);
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}

/* Read what is there and serve every complete line. */
static void serve_client(struct control_server *srv, struct client *c)
{
	char *nl;
	ssize_t n;

	if (!c->buf && !(c->buf = malloc(MAX_LINE + 1)))
		return drop_client(srv, c);
	n = recv(c->fd, c->buf + c->len, MAX_LINE - c->len, 0);
	if (n <= 0)
		return drop_client(srv, c);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		if (nl > c->buf)
			handle_request(srv, c->fd, c->buf);
		c->len -= (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len);
		c->buf[c->len] = '\0';
	}
	if (c->len == MAX_LINE) {
		reply_error(c->fd, NULL, "GenericError", "request line longer than 64 KiB");
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

static void accept_client(struct control_server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	json_t *hello;

	if (fd < 0)
		return;
	if (!trusted_peer(fd)) {
		reply_error(fd, NULL, "GenericError",
			    "permission denied: only the user running this ferry may control it");
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (srv->clients[i].fd >= 0)
			continue;
		pthread_mutex_lock(&srv->lock);
		srv->clients[i].fd = fd;
		pthread_mutex_unlock(&srv->lock);
		hello = json_pack("{s:{s:s}}", "ferry", "version", FERRY_VERSION);
		send_line(fd, hello);
		json_decref(hello);
		return;
	}
	reply_error(fd, NULL, "GenericError", "too many control clients");
	close(fd);
}

static void *server_thread(void *arg)
{
	struct control_server *srv = arg;
	uint64_t next_sample = time_now_ns();

	pthread_setname_np(pthread_self(), "control");
	for (;;) {
		struct pollfd pfd[MAX_CLIENTS + 2] = { { .fd = srv->listen_fd, .events = POLLIN },
						       { .fd = srv->wake[0], .events = POLLIN } };
		char drain[64];

		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[i + 2] = (struct pollfd){ .fd = srv->clients[i].fd, .events = POLLIN };
		if (poll(pfd, MAX_CLIENTS + 2, 250) < 0 && errno != EINTR)
			break;
		if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
			break;
		if (pfd[1].revents)
			(void)!read(srv->wake[0], drain, sizeof(drain));
		if (pfd[0].revents & POLLIN)
			accept_client(srv);
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (srv->clients[i].fd >= 0 && pfd[i + 2].revents)
				serve_client(srv, &srv->clients[i]);
		if (time_now_ns() >= next_sample) {
			control_sample(srv->ctx);
			next_sample = time_now_ns() + CONTROL_SAMPLE_MS * NS_PER_MS;
		}
	}
	return NULL;
}

/* Refuse to take over a socket someone still listens on; remove a stale one. */
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
	unlink(path);
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(-ENAMETOOLONG, "control socket path is longer than %zu bytes",
			       sizeof(addr.sun_path) - 1);
	rc = claim_path(path);
	if (rc < 0)
		return rc;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(-errno, "cannot create the control socket: %s", strerror(errno));
	/* Owner only, whatever the umask: the socket can stop and move the VM.
	 * Nobody can connect before listen(), so there is no window. */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 8) < 0) {
		rc = -errno;
		close(fd);
		return err_set(rc, "cannot listen on %s: %s", path, strerror(-rc));
	}
	return fd;
}

int control_start(const char *path, struct control_ctx *ctx, struct control_server **out)
{
	struct control_server *srv = calloc(1, sizeof(*srv));
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
	free(srv);
	return rc;
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
	unlink(srv->path);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
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
		if (srv->clients[i].fd >= 0)
			send_line(srv->clients[i].fd, msg);
	pthread_mutex_unlock(&srv->lock);
	json_decref(msg);
}
