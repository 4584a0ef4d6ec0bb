/* ferry upgrade: replace the ferry serving a running VM with a new binary,
 * by a local migration into a process it starts (control/upgrade.c). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"
#include "util/time.h"

#define TAKEOVER_WAIT_MS 10000 /* for the new ferry to serve the control path */

static const char upgrade_help[] =
	"Usage: ferry upgrade --control NAME|PATH [--binary FILE] [--json]\n"
	"\n"
	"Replace the ferry process serving the VM at PATH with a new one, started from\n"
	"FILE (default: the ferry binary now on disk where that process was started\n"
	"from), while the guest runs. The new process takes the guest's memory over by\n"
	"its file descriptor (a local migration: the VM needs --mem-backend memfd or\n"
	"hugetlb), then the control socket at PATH; the old one exits. If the new\n"
	"binary does not start, refuses the migration stream or the VM state (another\n"
	"version), or fails before the guest runs there, it is stopped and the guest\n"
	"runs on in the old process, memory intact. Exit status: 0 upgraded, 1 not\n"
	"(the reason says why; the guest is where it was), 2 usage.\n"
	"\n"
	"  --control NAME|PATH  the VM's control socket (ferry run --control)\n"
	"  --binary FILE        the new ferry executable\n"
	"  --json               print the answer as one JSON object: pid, binary, and the\n"
	"                       migration's report (the fields of query-migrate)\n"
	"\n"
	"Example:\n"
	"  ferry run --mem 4G --mem-backend memfd --control /run/ferry/vm1.sock &\n"
	"  cp build/src/ferry /usr/local/bin/ferry     # the new version\n"
	"  ferry upgrade --control /run/ferry/vm1.sock\n";

struct upgrade_opts {
	const char *control;
	const char *binary;
	bool json;
};

static int parse_args(int argc, char **argv, struct upgrade_opts *o)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "binary", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->control = control_path(optarg);
			break;
		case 'b':
			o->binary = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(upgrade_help, stdout);
			return -1;
		default:
			return option_error("upgrade", opt, argv);
		}
	}
	if (optind < argc)
		return extra_args_error("upgrade", argc, argv);
	if (!o->control)
		return usage_error("upgrade", "--control NAME|PATH is required");
	return 0;
}

/* Whether the ferry of pid serves path now (the old one may still, for a
 * moment, until the new one moves its socket there). */
static bool serves(const char *path, json_int_t pid)
{
	uint64_t deadline = time_now_ns() + TAKEOVER_WAIT_MS * NS_PER_MS;
	json_t *st = NULL;
	bool ok = false;

	while (!ok && time_now_ns() < deadline) {
		if (control_call(path, "query-status", NULL, &st) == 0)
			ok = json_integer_value(json_object_get(st, "pid")) == pid;
		json_decref(st);
		st = NULL;
		if (!ok)
			time_sleep_ns(10 * NS_PER_MS);
	}
	return ok;
}

int cmd_upgrade(int argc, char **argv)
{
	struct upgrade_opts o = { 0 };
	json_t *args, *r = NULL;
	json_int_t pid;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	args = o.binary ? json_pack("{s:s}", "binary", o.binary) : json_object();
	rc = control_call(o.control, "upgrade", args, &r);
	json_decref(args);
	if (rc < 0)
		return fail("%s", err_msg());
	pid = json_integer_value(json_object_get(r, "pid"));
	if (o.json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_migration_report(json_object_get(r, "report"));
		printf("Upgraded: the guest runs in ferry %lld (%s)\n", (long long)pid,
		       json_string_value(json_object_get(r, "binary")));
	}
	json_decref(r);
	if (!serves(o.control, pid))
		return fail("ferry %lld does not serve %s (its log says why)", (long long)pid,
			    o.control);
	return 0;
}
