/* Migration endpoints: tcp:HOST:PORT, unix:PATH and fd:N. */
#ifndef FERRY_TRANSPORT_URI_H
#define FERRY_TRANSPORT_URI_H

enum uri_kind {
	URI_TCP,
	URI_UNIX,
	URI_FD
};

struct uri {
	enum uri_kind kind;
	char host[256]; /* TCP; brackets of [v6] removed */
	char port[16];
	char path[108]; /* unix */
	int fd;		/* fd */
};

/* Returns 0, or -EINVAL with a sentence naming what is wrong. */
int uri_parse(const char *text, struct uri *out);

#endif
