#include "transport/unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/error.h"

_Static_assert(UNIXSOCK_PATH_MAX + sizeof(".4194304") <=
		       sizeof(((struct sockaddr_un *)0)->sun_path),
	       "a path and .PID fit in sun_path");

int unixsock_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) > UNIXSOCK_PATH_MAX)
		return err_set(-ENAMETOOLONG,
			       "cannot listen on %s: a unix socket path is at most %d bytes", path,
			       UNIXSOCK_PATH_MAX);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s.%d", path, (int)getpid());
	unlink(addr.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(-errno, "cannot create a unix socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    (mode && chmod(addr.sun_path, mode) < 0) || listen(fd, backlog) < 0 ||
	    rename(addr.sun_path, path) < 0) {
		rc = -errno;
		close(fd);
		unlink(addr.sun_path);
		return err_set(rc, "cannot listen on %s: %s", path, strerror(-rc));
	}
	return fd;
}
