/* Telling the service manager how ferry stands (systemd's notification
 * protocol, as sd_notify speaks it): a unit of Type=notify learns when
 * ferry serves, and after ferry upgrade which process serves it now. */
#ifndef FERRY_UTIL_NOTIFY_H
#define FERRY_UTIL_NOTIFY_H

/* Send state ("READY=1", "MAINPID=N", newline-separated) to
 * $NOTIFY_SOCKET (a unix datagram socket; "@" for the abstract namespace).
 * Without $NOTIFY_SOCKET, nothing: 0. Returns 0 or -errno. */
int service_notify(const char *state);

#endif
