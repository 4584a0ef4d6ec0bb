/* Logging to stderr with a level, a monotonic timestamp and the caller's tag.
 * The level comes from FERRY_LOG (err, warn, info, debug); default info. */
#ifndef FERRY_UTIL_LOG_H
#define FERRY_UTIL_LOG_H

enum log_level {
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG
};

void log_set_level(enum log_level level);
/* The level in force: error, warn, info or debug. */
const char *log_level_name(void);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_write(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
