/* ferry ctl: send one command to a control socket and print its answer. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"

static const char ctl_help[] =
	"Usage: ferry ctl --control NAME|PATH COMMAND ['{\"arg\": value}']\n"
	"\n"
	"Send COMMAND, with optional JSON arguments, to the VM's control socket and\n"
	"print the JSON it returns. Commands (docs/control.md):\n"
	"  query-status   run state, sizes, workload, guest counters, write rate\n"
	"  stop           pause every vCPU (prints the pause latency)\n"
	"  cont           resume the vCPUs ('{\"force\": true}' after an unknown\n"
	"                 migration, once the destination is fenced, or a lost one)\n"
	"  guest-verify   have the guest check every page of its working set now\n"
	"  migrate, migrate-set-parameters, query-migrate, migrate-cancel\n"
	"                 an outgoing migration (ferry migrate drives these)\n"
	"  migrate-start-postcopy\n"
	"                 switch the running migration to post-copy (it must have\n"
	"                 been started with --postcopy)\n"
	"  migrate-incoming-cancel\n"
	"                 on a destination: fail the migration in progress and\n"
	"                 refuse its COMMIT (ferry migrate-resolve uses it); a\n"
	"                 post-copy paused on a broken link is given up (its guest lost)\n"
	"  migrate-recover '{\"uri\": URI}'\n"
	"                 on a destination whose post-copy link broke: listen on URI\n"
	"                 for the source to come back (ferry migrate --resume --to URI)\n"
	"  calc-dirty-rate, query-dirty-rate, query-forecast\n"
	"                 measure the guest's dirty rate and forecast a migration\n"
	"                 (ferry dirtyrate and ferry predict drive these)\n"
	"  quit           stop the VM and end ferry run\n";

int cmd_ctl(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = NULL;
	json_t *args = NULL, *r;
	json_error_t jerr;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = control_path(optarg);
			break;
		case 'h':
			fputs(ctl_help, stdout);
			return 0;
		default:
			return option_error("ctl", opt, argv);
		}
	}
	if (!path)
		return usage_error("ctl", "--control NAME|PATH is required");
	if (optind >= argc)
		return usage_error("ctl", "which command? e.g. query-status or quit");
	if (optind + 2 < argc)
		return usage_error(
			"ctl",
			"unexpected argument '%s' (the JSON arguments go in one quoted word)",
			argv[optind + 2]);
	if (optind + 1 < argc && !(args = json_loads(argv[optind + 1], 0, &jerr)))
		return usage_error("ctl", "arguments are not JSON: %s", jerr.text);
	rc = control_call(path, argv[optind], args, &r);
	json_decref(args);
	if (rc < 0)
		return fail("%s", err_msg());
	json_dumpf(r, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(r);
	return 0;
}
