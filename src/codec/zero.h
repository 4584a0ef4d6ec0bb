/* Zero-page detection. */
#ifndef FERRY_CODEC_ZERO_H
#define FERRY_CODEC_ZERO_H

#include <stdbool.h>

/* True if the 4 KiB page at p is all zero bytes. */
bool zero_page(const void *p);

#endif
