/* The ferry command line: one function per subcommand, each returning the
 * process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <jansson.h>
#include <stdbool.h>

int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_dirtyrate(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_migrate_resolve(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_migrate_set(int argc, char **argv);
int cmd_migrate_cancel(int argc, char **argv);

#define EXIT_USAGE 2
/* ferry migrate: COMMIT went out and no answer came (migrate-resolve). */
#define EXIT_UNKNOWN  3
#define EXIT_LOST     4
#define EXIT_PAUSED   5 /* ferry migrate --resume: the try failed, post-copy still paused */
#define EXIT_DETACHED 6 /* Ctrl-C twice: the migration goes on without this command */

/* Print "ferry CMD: <message>" and a pointer to --help; return EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* getopt_long returned ':' (missing value) or '?' (unknown option) for
 * argv[optind - 1]: say which, as usage_error does. */
int option_error(const char *cmd, int opt, char **argv);
/* Arguments left after the options are refused: usage_error naming the
 * first, or 0 when there are none. */
int extra_args_error(const char *cmd, int argc, char **argv);
/* Print "ferry: <message>" to stderr; return 1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where VMs named by --control NAME keep their control sockets:
 * $FERRY_RUN_DIR, else $XDG_RUNTIME_DIR/ferry (not root), else /run/ferry. */
const char *run_dir(void);
/* --control's argument as a path: one with a '/' as it is, a NAME as
 * run_dir()/NAME.sock (in one of four buffers, each kept until the fourth
 * call after). */
const char *control_path(const char *arg);

/* How to follow a migration (cli/follow.c). */
struct follow {
	const char *control; /* the source's control socket */
	bool json;	     /* the report as JSON */
	bool resume;	     /* a --resume try: a pause again ends it */
	/* The first Ctrl-C cancels the migration (else it stops watching). */
	bool cancel_on_interrupt;
};

/* From now, Ctrl-C is counted for follow_migration, not fatal: call it
 * before starting what Ctrl-C should cancel. */
void follow_catch_interrupts(void);
/* control_call with Ctrl-C held back until the answer is in: a signal
 * ends a read on a socket with a receive timeout even with SA_RESTART
 * (signal(7)), which read as a lost source (seen on a slow host). The
 * Ctrl-C is taken as soon as the call returns. */
int follow_call(const char *control, const char *command, json_t *args, json_t **r);
/* Follow the migration at f->control to its end, with progress on stderr,
 * and print its report; the exit status its outcome calls for (cli.h). */
int follow_migration(const struct follow *f);

/* A query-migrate report, for people (ferry migrate, ferry upgrade). */
void print_migration_report(json_t *s);

/* Measure the dirty rate of the VM at control for seconds (with progress on
 * a terminal); the query-dirty-rate result in *out. Returns 0, or 1 after
 * saying why. */
int measure_dirty_rate(const char *control, int seconds, json_t **out);
/* One line: what each codec made of the measurement's sample (its codecs). */
void print_codecs(json_t *codecs);

#endif
