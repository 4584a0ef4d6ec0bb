/* Pages by reference, for a channel whose socket takes them so (a unix
 * stream socket): vmsplice them into the channel's own pipe, then splice
 * the pipe into the socket. This side copies nothing, and the peer reads
 * what the memory holds when it reads, not when the write returned. */
#ifndef FERRY_TRANSPORT_SPLICE_H
#define FERRY_TRANSPORT_SPLICE_H

#include <stdbool.h>
#include <sys/uio.h>

struct chan;

/* Whether c's socket takes pages by reference (checked once, at set-up). */
bool splice_suits(int fd);
/* Send the whole pages at v by reference (v's base and length are page
 * multiples). 0, or -errno with err_msg(). */
int splice_pages(struct chan *c, struct iovec v);
/* Close c's pipe, if it has one. */
void splice_close(struct chan *c);

#endif
