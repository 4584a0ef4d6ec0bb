/* Records for a fuzz target to send: the input is a list of records, each
 * a u32 type, a u16 length and that many body bytes, framed as a sender
 * frames them, with a correct checksum unless the type's reserved bit 30
 * asks for a wrong one, so that the fuzzer reaches past the checksums. */
#ifndef FERRY_TESTS_FUZZ_FRAME_H
#define FERRY_TESTS_FUZZ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX (96u << 10) /* what a socket pair holds without a reader */

struct chan;

/* Frame the records of data into out (FRAME_MAX bytes); the length. */
size_t frame_records(const uint8_t *data, size_t size, uint8_t *out);
/* A channel to read prefix (plen bytes) and then the records of data from,
 * as from a peer that sent them all and hung up; -1 if none could be made. */
int frame_chan(const void *prefix, size_t plen, const uint8_t *data, size_t size, struct chan *c);

#endif
