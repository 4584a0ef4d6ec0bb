#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char message[512];

int err_set(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return rc;
}

int err_wrap(int rc, const char *fmt, ...)
{
	char old[sizeof(message)], prefix[256];
	va_list ap;
	int n;

	snprintf(old, sizeof(old), "%s", message);
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	n = snprintf(message, sizeof(message), "%s: ", prefix);
	if (n > 0 && (size_t)n < sizeof(message)) {
		size_t len = strnlen(old, sizeof(message) - (size_t)n - 1); /* cut if too long */

		memcpy(message + n, old, len);
		message[(size_t)n + len] = '\0';
	}
	return rc;
}

const char *err_msg(void)
{
	return message;
}

void err_clear(void)
{
	message[0] = '\0';
}
