/* How fast ferry's sender can move pages on this host when the CPU, not
 * the link, is the limit: what a forecast caps a fast link at. */
#ifndef FERRY_MIGRATION_COPYRATE_H
#define FERRY_MIGRATION_COPYRATE_H

#include <stddef.h>
#include <stdint.h>

#define COPY_SENDERS_MAX 16

/* Bytes per second: npages pages at pages, each hashed as the encoder
 * hashes it, written over a loopback TCP connection in batches of a
 * pipeline's size, and read by a thread of its own, until about bytes went;
 * by senders threads side by side (1 to COPY_SENDERS_MAX; data channels'
 * workers), each on its own connection with its own reader, bytes shared
 * among them. Both ends on this host, as in a local migration. 0 if a socket
 * or thread could not be made. */
double copy_rate_bps(const uint8_t *pages, size_t npages, uint64_t bytes, unsigned senders);

#endif
