/* ferry list: the VMs on this host, from the control sockets in the run
 * directory (cli.h, run_dir), each asked for its state and migration. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"
#include "util/size.h"

static const char list_help[] =
	"Usage: ferry list [--json]\n"
	"\n"
	"List the VMs on this host: every ferry started with --control NAME keeps its\n"
	"control socket in the run directory ($FERRY_RUN_DIR; else $XDG_RUNTIME_DIR/ferry\n"
	"for a user, /run/ferry for root), and each is asked for its state, its memory\n"
	"and a migration in progress. Any command's --control takes the NAME shown here.\n"
	"A socket nothing answers on is listed as stale (its ferry is gone).\n"
	"\n"
	"  --json   one JSON object per VM, one per line\n"
	"\n"
	"Exit status: 0 (also with no VM), 1 the run directory cannot be read, 2 usage.\n";

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The VM's line: name, pid, state, memory, vCPUs, migration. */
static json_t *describe(const char *name, const char *path)
{
	json_t *st = NULL, *mig = NULL, *in, *r;

	if (control_call(path, "query-status", NULL, &st) < 0)
		return json_pack("{s:s,s:s,s:s}", "name", name, "state", "stale", "error",
				 err_msg());
	r = json_pack("{s:s,s:I,s:s,s:I,s:I}", "name", name, "pid", num(st, "pid"), "state",
		      str(st, "status"), "memory_bytes", num(st, "memory_bytes"), "vcpus",
		      num(st, "vcpus"));
	in = json_object_get(st, "incoming");
	if (in)
		json_object_set_new(r, "incoming", json_string(str(in, "phase")));
	if (control_call(path, "query-migrate", NULL, &mig) == 0 &&
	    strcmp(str(mig, "status"), "none"))
		json_object_set_new(r, "migration",
				    json_pack("{s:s,s:s,s:I,s:I}", "status", str(mig, "status"),
					      "uri", str(mig, "uri"), "rounds", num(mig, "rounds"),
					      "remaining_bytes",
					      num(json_object_get(mig, "ram"), "remaining")));
	json_decref(st);
	json_decref(mig);
	return r;
}

static void print_row(json_t *vm)
{
	json_t *mig = json_object_get(vm, "migration");
	char mem[32] = "-", what[160] = "-", pid[24] = "-", vcpus[24] = "-";

	if (num(vm, "memory_bytes"))
		size_format((uint64_t)num(vm, "memory_bytes"), mem, sizeof(mem));
	if (!strcmp(str(vm, "state"), "stale"))
		snprintf(what, sizeof(what), "%s", str(vm, "error"));
	else if (json_object_get(vm, "incoming") && !num(vm, "vcpus")) /* no VM here yet */
		snprintf(what, sizeof(what), "incoming: %s", str(vm, "incoming"));
	else if (mig) {
		char left[32];

		size_format((uint64_t)num(mig, "remaining_bytes"), left, sizeof(left));
		snprintf(what, sizeof(what), "%s to %s, round %lld, %s left", str(mig, "status"),
			 str(mig, "uri"), num(mig, "rounds"), left);
	}
	if (num(vm, "pid"))
		snprintf(pid, sizeof(pid), "%lld", num(vm, "pid"));
	if (num(vm, "vcpus"))
		snprintf(vcpus, sizeof(vcpus), "%lld", num(vm, "vcpus"));
	printf("%-16s %8s  %-12s %8s %5s  %s\n", str(vm, "name"), pid, str(vm, "state"), mem, vcpus,
	       what);
}

static int compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAMEs of the run directory's sockets, sorted, into *list (*n of
 * them; a directory not made yet has none). 0, or -errno. */
static int names(const char *dir, char ***list, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*list = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char **grown, *name;

		if (len < 6 || strcmp(e->d_name + len - 5, ".sock") ||
		    !(name = strndup(e->d_name, len - 5)))
			continue;
		if (!(grown = realloc(*list, (*n + 1) * sizeof(**list)))) {
			free(name);
			continue;
		}
		*list = grown;
		(*list)[(*n)++] = name;
	}
	closedir(d);
	if (*n)
		qsort(*list, *n, sizeof(**list), compare);
	return 0;
}

int cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	const char *dir = run_dir();
	bool json = false;
	char **vms;
	size_t n;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'h')
			return fputs(list_help, stdout), 0;
		else
			return option_error("list", opt, argv);
	}
	if (optind < argc)
		return extra_args_error("list", argc, argv);
	if ((rc = names(dir, &vms, &n)) < 0)
		return fail("cannot read the run directory %s: %s", dir, strerror(-rc));
	if (!json)
		printf("%-16s %8s  %-12s %8s %5s  %s\n", "NAME", "PID", "STATE", "MEMORY", "VCPUS",
		       "MIGRATION");
	for (size_t i = 0; i < n; i++) {
		json_t *vm = describe(vms[i], control_path(vms[i]));

		if (json) {
			json_dumpf(vm, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			print_row(vm);
		}
		json_decref(vm);
		free(vms[i]);
	}
	free(vms);
	return 0;
}
