/* A unix socket that appears at its path only once it listens. */
#ifndef FERRY_TRANSPORT_UNIXSOCK_H
#define FERRY_TRANSPORT_UNIXSOCK_H

#include <sys/types.h>

/* The longest path unixsock_listen takes: room is left for ".PID". */
#define UNIXSOCK_PATH_MAX 99

/* Listens on path (replacing whatever file is there) with the given mode (0:
 * as the umask makes it): bound and listened under path.PID, then renamed
 * onto path, so that a client that sees the file can connect (bound in
 * place, it would refuse connections between bind() and listen()). Returns
 * a blocking close-on-exec fd or -errno with an error sentence. */
int unixsock_listen(const char *path, mode_t mode, int backlog);

#endif
