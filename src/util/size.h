/* Parsing of human sizes ("512M", "1G", "4096") and rates ("100M", "max"). */
#ifndef FERRY_UTIL_SIZE_H
#define FERRY_UTIL_SIZE_H

#include <stdint.h>

/* Parse a byte count with an optional K/M/G/T suffix (binary: 1K = 1024; a
 * trailing "iB" or "B" is accepted). Returns 0, or -EINVAL on anything else,
 * including overflow and an empty string. */
int size_parse(const char *text, uint64_t *bytes);

/* Parse a transfer rate into bytes per second: a size per second ("100M" =
 * 100 MiB/s) or bits per second with decimal units ("1Gbit", "100Mbit").
 * Returns 0 or -EINVAL. */
int rate_parse(const char *text, uint64_t *bytes_per_s);

/* Format bytes as "1.5 GiB" into buf. Returns buf. */
char *size_format(uint64_t bytes, char *buf, unsigned len);

#endif
