/* Following a migration from its source's control socket until it ends:
 * its progress (on a terminal one line, redrawn; off it, a line every few
 * seconds for logs), Ctrl-C, and the report at the end. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"
#include "util/size.h"
#include "util/time.h"

/* Off a terminal: one progress line this often. */
#define LOG_EVERY_NS (5 * NS_PER_S)

static volatile sig_atomic_t interrupts; /* Ctrl-Cs so far */

static void on_interrupt(int sig)
{
	(void)sig;
	interrupts++;
}

int follow_call(const char *control, const char *command, json_t *args, json_t **r)
{
	sigset_t block, old;
	int rc;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	rc = control_call(control, command, args, r);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static const char *status_of(json_t *s)
{
	const char *t = json_string_value(json_object_get(s, "status"));

	return t ? t : "none";
}

static void progress_line(json_t *s)
{
	char sent[32], rate[32];

	size_format((uint64_t)num(s, "bytes_sent"), sent, sizeof(sent));
	size_format((uint64_t)num(s, "bandwidth_bps"), rate, sizeof(rate));
	fprintf(stderr,
		"\r\033[K%-10s round %d  sent %s  remaining %.0f pages  %s/s  dirty %.0f pages/s  expect %.0f ms  throttle %.0f%%",
		status_of(s), (int)num(s, "rounds"), sent, num(s, "remaining_pages"), rate,
		num(s, "dirty_rate_pps"),
		num(s, "expected_downtime_ms") > 1e9 ? 0 : num(s, "expected_downtime_ms"),
		num(json_object_get(s, "converge"), "throttle_pct"));
}

/* For a log: how far, how fast, and how long it may still take. */
static void log_line(json_t *s)
{
	json_t *ram = json_object_get(s, "ram");
	double total = num(ram, "total"), left = num(ram, "remaining"),
	       bps = num(s, "bandwidth_bps");
	char left_s[32], rate[32];

	size_format((uint64_t)left, left_s, sizeof(left_s));
	size_format((uint64_t)bps, rate, sizeof(rate));
	fprintf(stderr, "ferry migrate: %s, round %d, %.0f%% (%s left), %s/s", status_of(s),
		(int)num(s, "rounds"), total > 0 ? 100 * (1 - left / total) : 0, left_s, rate);
	if (bps > 0)
		fprintf(stderr, ", about %.0f s to go", left / bps);
	fputc('\n', stderr);
}

static bool final_status(const char *s)
{
	return strcmp(s, "setup") && strcmp(s, "active") && strcmp(s, "switchover") &&
	       strcmp(s, "postcopy-active") && strcmp(s, "postcopy-paused") &&
	       strcmp(s, "postcopy-recover");
}

/* A post-copy paused on a broken link: say so once, with what to do. */
static bool tell_paused(json_t *s, bool told, bool tty)
{
	bool paused = !strcmp(status_of(s), "postcopy-paused");

	if (paused && !told)
		fprintf(stderr, "%sferry migrate: %s\n", tty ? "\r\033[K" : "",
			json_string_value(json_object_get(s, "reason")));
	return paused;
}

/* The first Ctrl-C cancels (ferry migrate, migrate-cancel) or stops
 * watching (--watch); the second stops waiting for the cancel, which goes
 * on by itself. Returns true when this command should stop following. */
static bool interrupted(const struct follow *f, int *seen, bool tty)
{
	const char *clear = tty ? "\r\033[K" : "";
	json_t *ok;

	if (interrupts == *seen)
		return false;
	*seen = interrupts;
	if (!f->cancel_on_interrupt || *seen > 1) {
		fprintf(stderr,
			"%sferry: no longer %s; the %s goes on by itself (ferry migrate --watch "
			"--control %s follows it)\n",
			clear, *seen > 1 ? "waiting" : "watching",
			*seen > 1 ? "cancel" : "migration", f->control);
		return true;
	}
	if (follow_call(f->control, "migrate-cancel", NULL, &ok) < 0) {
		fprintf(stderr, "%sferry: cannot cancel: %s\n", clear, err_msg());
		return false;
	}
	json_decref(ok);
	fprintf(stderr, "%sferry: cancelling (Ctrl-C again: stop waiting for it)\n", clear);
	return false;
}

static int exit_status(const char *status)
{
	return !strcmp(status, "completed")	    ? 0
	       : !strcmp(status, "unknown")	    ? EXIT_UNKNOWN
	       : !strcmp(status, "lost")	    ? EXIT_LOST
	       : !strcmp(status, "postcopy-paused") ? EXIT_PAUSED
						    : 1;
}

void follow_catch_interrupts(void)
{
	struct sigaction sa = { .sa_handler = on_interrupt, .sa_flags = SA_RESTART };

	sigaction(SIGINT, &sa, NULL);
}

int follow_migration(const struct follow *f)
{
	bool tty = isatty(STDERR_FILENO) && !getenv("CI"), paused = false;
	uint64_t next_log = time_now_ns() + LOG_EVERY_NS;
	int seen = 0, rc;
	json_t *r = NULL;

	if (!tty && !f->cancel_on_interrupt)
		fprintf(stderr,
			"ferry migrate: watching the migration at %s (Ctrl-C stops watching)\n",
			f->control);
	for (uint64_t wait_ms = 2;; wait_ms = wait_ms < 50 ? wait_ms * 2 : 100) {
		json_decref(r);
		time_sleep_ns(wait_ms * NS_PER_MS); /* a local migration ends in ms */
		if (follow_call(f->control, "query-migrate", NULL, &r) < 0)
			return fail("lost the source while migrating: %s", err_msg());
		if (final_status(status_of(r)))
			break;
		if (interrupted(f, &seen, tty)) {
			json_decref(r);
			return EXIT_DETACHED;
		}
		paused = tell_paused(r, paused, tty);
		if (paused && f->resume)
			break; /* this try failed: the reason says why */
		if (tty) {
			progress_line(r);
		} else if (time_now_ns() >= next_log) {
			log_line(r);
			next_log = time_now_ns() + LOG_EVERY_NS;
		}
	}
	if (tty)
		fputs("\r\033[K", stderr);
	if (f->json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_migration_report(r);
	}
	rc = exit_status(status_of(r));
	json_decref(r);
	return rc;
}
