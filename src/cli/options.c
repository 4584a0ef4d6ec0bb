#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

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
