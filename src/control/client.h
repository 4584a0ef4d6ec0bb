/* Client side of the control socket, for the CLI and tests. */
#ifndef FERRY_CONTROL_CLIENT_H
#define FERRY_CONTROL_CLIENT_H

#include <jansson.h>

/* Connect to path, run command with args (NULL for none; not consumed) and
 * return its result in *result (caller decrefs). Returns 0, or -errno with a
 * sentence in err_msg() (including the server's own error description). */
int control_call(const char *path, const char *command, json_t *args, json_t **result);

#endif
