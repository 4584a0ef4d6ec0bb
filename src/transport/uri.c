#include "transport/uri.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define URI_HELP "use tcp:HOST:PORT, unix:PATH or fd:N"

static int parse_tcp(const char *rest, struct uri *u)
{
	const char *colon, *host = rest;
	size_t host_len;
	char *end;
	long port;

	if (*rest == '[') {
		const char *close = strchr(rest, ']');

		if (!close || close[1] != ':')
			return err_set(-EINVAL, "'tcp:%s' has an unclosed [IPv6] address", rest);
		host = rest + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon)
			return err_set(-EINVAL, "'tcp:%s' has no port; " URI_HELP, rest);
		host_len = (size_t)(colon - rest);
	}
	port = strtol(colon + 1, &end, 10);
	if (!host_len || host_len >= sizeof(u->host) || *end || end == colon + 1 || port < 1 ||
	    port > 65535)
		return err_set(-EINVAL, "'tcp:%s' is not HOST:PORT with a port from 1 to 65535",
			       rest);
	memcpy(u->host, host, host_len);
	u->host[host_len] = '\0';
	snprintf(u->port, sizeof(u->port), "%ld", port);
	return 0;
}

int uri_parse(const char *text, struct uri *u)
{
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	if (!strncmp(text, "tcp:", 4)) {
		u->kind = URI_TCP;
		return parse_tcp(text + 4, u);
	}
	if (!strncmp(text, "unix:", 5)) {
		u->kind = URI_UNIX;
		if (!text[5] || strlen(text + 5) >= sizeof(u->path))
			return err_set(-EINVAL, "'%s' needs a socket path of 1 to %zu bytes", text,
				       sizeof(u->path) - 1);
		strcpy(u->path, text + 5);
		return 0;
	}
	if (!strncmp(text, "fd:", 3)) {
		char *end;
		long fd = strtol(text + 3, &end, 10);

		u->kind = URI_FD;
		if (end == text + 3 || *end || fd < 0 || fd > 65535)
			return err_set(-EINVAL, "'%s' is not fd:N with a file descriptor number",
				       text);
		u->fd = (int)fd;
		return 0;
	}
	return err_set(-EINVAL, "'%s' is not a migration address; " URI_HELP, text);
}
