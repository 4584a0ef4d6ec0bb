/* Error sentences for the user. Functions return 0 or a negative errno; the
 * one that knows what went wrong also records a sentence with err_set(), which
 * the CLI or control layer shows. The sentence is per thread, like errno. */
#ifndef FERRY_UTIL_ERROR_H
#define FERRY_UTIL_ERROR_H

/* Record a sentence (printf format) and return rc, for "return err_set(...)". */
int err_set(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Put prefix (printf format) and ": " before the current sentence; return rc. */
int err_wrap(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last sentence recorded on this thread, or "" if none. */
const char *err_msg(void);
void err_clear(void);

#endif
