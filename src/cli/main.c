/* ferry: a KVM virtual machine monitor built for live migration. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
	"ferry " FERRY_VERSION " - a KVM virtual machine monitor built for live migration\n"
	"\n"
	"Usage: ferry COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  run       run a VM with the built-in guest until told to quit\n"
	"  status    show a running VM's state and its guest's progress\n"
	"  list      list the VMs on this host (those started with --control NAME)\n"
	"  migrate   move a running VM to another ferry, live\n"
	"  migrate-set      change a migration's bandwidth, downtime limit, ... (also mid-way)\n"
	"  migrate-cancel   cancel a running migration; the guest runs on here\n"
	"  migrate-resolve  settle a migration whose outcome is unknown\n"
	"  upgrade   replace the ferry serving a VM with a new binary, the guest running\n"
	"  dirtyrate measure how fast a running guest dirties memory\n"
	"  predict   forecast a migration of a running VM over a given link\n"
	"  ctl       send one command to a VM's control socket, print the JSON answer\n"
	"  version   print the version\n"
	"\n"
	"Run 'ferry COMMAND --help' for a command's options. A first try:\n"
	"  ferry run --mem 1G --vcpus 2 --workload dirty:rate=100M --control web1 &\n"
	"  ferry run --incoming tcp:127.0.0.1:4444 --control dst &\n"
	"  ferry list\n"
	"  ferry migrate --control web1 --to tcp:127.0.0.1:4444 --verify   # Ctrl-C cancels\n"
	"  ferry migrate-set --control web1 --max-bandwidth 50M   # from another terminal\n"
	"  ferry migrate --watch --control web1\n"
	"  ferry status --control dst\n"
	"  ferry ctl --control dst quit\n"
	"A command's --control takes a NAME (in the run directory: 'ferry list') or a\n"
	"PATH. 'man ferry-COMMAND' has each command's page.\n";

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* A peer that hangs up is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);

	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage, cmd ? stdout : stderr);
		return cmd ? 0 : EXIT_USAGE;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("ferry %s\n", FERRY_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(cmd, "upgrade"))
		return cmd_upgrade(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate-set"))
		return cmd_migrate_set(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate-cancel"))
		return cmd_migrate_cancel(argc - 1, argv + 1);
	if (!strcmp(cmd, "migrate-resolve"))
		return cmd_migrate_resolve(argc - 1, argv + 1);
	if (!strcmp(cmd, "dirtyrate"))
		return cmd_dirtyrate(argc - 1, argv + 1);
	if (!strcmp(cmd, "predict"))
		return cmd_predict(argc - 1, argv + 1);
	if (!strcmp(cmd, "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(cmd, "ctl"))
		return cmd_ctl(argc - 1, argv + 1);
	fprintf(stderr, "ferry: unknown command '%s'. Run 'ferry --help' for the list.\n", cmd);
	return EXIT_USAGE;
}
