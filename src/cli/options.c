#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ferry %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int option_error(const char *cmd, int opt, char **argv)
{
	if (opt == ':')
		return usage_error(cmd, "%s needs a value", argv[optind - 1]);
	return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

int extra_args_error(const char *cmd, int argc, char **argv)
{
	if (optind < argc)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	return 0;
}

int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

const char *run_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("FERRY_RUN_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && env[0])
		snprintf(dir, sizeof(dir), "%s", env);
	else if (geteuid() != 0 && xdg && xdg[0])
		snprintf(dir, sizeof(dir), "%s/ferry", xdg);
	else
		snprintf(dir, sizeof(dir), "/run/ferry");
	return dir;
}

const char *control_path(const char *arg)
{
	static char paths[4][PATH_MAX]; /* a command names at most two ferries */
	static unsigned next;
	char *path = paths[next++ % 4];

	if (strchr(arg, '/'))
		return arg;
	snprintf(path, PATH_MAX, "%s/%s.sock", run_dir(), arg);
	return path;
}
