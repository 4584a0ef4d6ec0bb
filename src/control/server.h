/* The control socket: a unix socket speaking one JSON object per line, in
 * the spirit of QMP. On connect the server greets with
 *   {"ferry": {"version": "..."}}
 * then answers each {"execute": NAME, "arguments": {...}, "id": ANY} with
 * {"return": {...}, "id": ...} or {"error": {"class": ..., "desc": SENTENCE}}
 * and sends {"event": NAME, "data": {...}, "timestamp": {...}} to every client
 * when something happens (the VM stopped). docs/control.md lists the commands. */
#ifndef FERRY_CONTROL_SERVER_H
#define FERRY_CONTROL_SERVER_H

#include <stdbool.h>

struct control_server;
struct control_ctx;

/* Listen on path (an existing socket file there is replaced if nothing
 * listens on it) and serve ctx from a thread. The file appears at path
 * only once it accepts connections. Returns 0 or -errno. */
int control_start(const char *path, struct control_ctx *ctx, struct control_server **out);
/* Stop serving, close every client and remove the socket file (unless
 * another ferry's socket took its place). */
void control_stop(struct control_server *srv);
/* Move the socket file to path, replacing what is there (the ferry this one
 * takes over from: its clients stay with it, new ones come here). */
int control_move(struct control_server *srv, const char *path);
/* Send an event to every client. Thread-safe. data is consumed. */
void control_event(struct control_server *srv, const char *name, void *data);

#endif
