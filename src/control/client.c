#include "control/client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/error.h"

#define MAX_REPLY (1 << 20)
/* The longest a command may take to answer (guest-verify: up to 120 s). */
#define REPLY_TIMEOUT_S 150

static int connect_to(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(-ENAMETOOLONG, "control socket path %s is too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(-errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		close(fd);
		return err_set(rc, "cannot reach a ferry at %s: %s", path, strerror(-rc));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = REPLY_TIMEOUT_S },
		   sizeof(struct timeval));
	return fd;
}

/* Read one line into a malloc'd string. */
static char *read_line(FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);

	if (n <= 0 || n > MAX_REPLY) {
		free(line);
		return NULL;
	}
	return line;
}

/* Skip the greeting and events; return the first "return" or "error". */
static json_t *read_reply(FILE *in)
{
	for (;;) {
		char *line = read_line(in);
		json_t *msg;

		if (!line)
			return NULL;
		msg = json_loads(line, 0, NULL);
		free(line);
		if (msg && (json_object_get(msg, "return") || json_object_get(msg, "error")))
			return msg;
		json_decref(msg);
	}
}

int control_call(const char *path, const char *command, json_t *args, json_t **result)
{
	json_t *req = json_pack("{s:s}", "execute", command), *reply, *err;
	int fd = connect_to(path), rc = 0;
	bool sent;
	char *text;
	FILE *in;

	if (fd < 0) {
		json_decref(req);
		return fd;
	}
	if (args)
		json_object_set(req, "arguments", args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	in = fdopen(fd, "r+");
	if (!in || !text) {
		rc = err_set(-ENOMEM, "out of memory");
		goto out;
	}
	/* A ferry that turns us away says why before it hangs up: read that
	 * even if the request could not be sent. */
	sent = fprintf(in, "%s\n", text) >= 0 && fflush(in) == 0;
	reply = read_reply(in);
	if (!reply) {
		rc = err_set(-EPIPE,
			     sent ? "the ferry at %s did not answer (closed, or silent for %d s)"
				  : "cannot send to the ferry at %s",
			     path, REPLY_TIMEOUT_S);
		goto out;
	}
	err = json_object_get(reply, "error");
	if (err) {
		rc = err_set(-EREMOTEIO, "%s",
			     json_string_value(json_object_get(err, "desc")) ?: "error");
	} else {
		*result = json_incref(json_object_get(reply, "return"));
	}
	json_decref(reply);
out:
	free(text);
	if (in)
		fclose(in);
	else
		close(fd);
	return rc;
}
