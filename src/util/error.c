#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char message[512];

int err_set(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
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
