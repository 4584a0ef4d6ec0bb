#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/time.h"

static int current_level = -1; /* any thread: atomic accesses */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int level_from_env(void)
{
	const char *env = getenv("FERRY_LOG");

	for (int i = LOG_ERR; env && i <= LOG_DEBUG; i++)
		if (!strcmp(env, level_names[i]))
			return i;
	return LOG_INFO;
}

void log_set_level(enum log_level level)
{
	__atomic_store_n(&current_level, (int)level, __ATOMIC_RELAXED);
}

static int log_enabled(enum log_level level)
{
	int now = __atomic_load_n(&current_level, __ATOMIC_RELAXED);

	if (now < 0) { /* the first line decides; the same answer for every thread */
		now = level_from_env();
		__atomic_store_n(&current_level, now, __ATOMIC_RELAXED);
	}
	return (int)level <= now;
}

const char *log_level_name(void)
{
	int now = __atomic_load_n(&current_level, __ATOMIC_RELAXED);

	return level_names[now < 0 ? level_from_env() : now];
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so that lines from several threads do not interleave. */
	fprintf(stderr, "[%10.3f] %s: %s\n", (double)time_now_ns() / 1e9, level_names[level], line);
}
