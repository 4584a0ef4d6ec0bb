/* ferry status: one look at a running VM, for people or (--json) scripts. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"
#include "util/page.h"
#include "util/size.h"

static const char status_help[] =
	"Usage: ferry status --control NAME|PATH [--json]\n"
	"\n"
	"Show the state of the VM served at PATH: run state, vCPUs, memory, workload,\n"
	"the guest's progress counters and self-check errors, and the rate at which\n"
	"the guest writes pages (measured over the last second).\n"
	"\n"
	"  --control NAME|PATH  the VM's control socket (as given to ferry run)\n"
	"  --json               print the raw query-status answer as one JSON object\n";

static json_int_t num(json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* The memory a destination made ready for its guest, if any. */
static void print_ready_memory(json_t *m)
{
	const char *state = json_string_value(json_object_get(m, "state"));
	char size[32];

	if (!state || !strcmp(state, "none"))
		return;
	size_format((uint64_t)num(m, "bytes"), size, sizeof(size));
	printf("Memory    %s %s, %s", size, json_string_value(json_object_get(m, "backend")),
	       state);
	if (json_object_get(m, "populate_ms"))
		printf(", faulted in in %.0f ms",
		       json_number_value(json_object_get(m, "populate_ms")));
	if (json_object_get(m, "error"))
		printf(": %s", json_string_value(json_object_get(m, "error")));
	printf("\n");
}

static void print_incoming(json_t *r)
{
	json_t *in = json_object_get(r, "incoming");
	const char *last = json_string_value(json_object_get(in, "last_failure"));
	const char *phase = json_string_value(json_object_get(in, "phase"));

	if (!strcmp(phase, "running") || !strcmp(phase, "postcopy-paused"))
		printf("VM        came by migration and runs here; its pages still arrive (%s",
		       phase);
	else
		printf("VM        none yet: waiting for an incoming migration (%s", phase);
	if (json_object_get(in, "id"))
		printf(", migration %s", json_string_value(json_object_get(in, "id")));
	if (!strcmp(phase, "loaded"))
		printf(", COMMIT awaited for %.1f s more",
		       json_number_value(json_object_get(in, "commit_wait_ms")) / 1000);
	printf(")\n");
	printf("Received  %lld pages, %lld bytes, %lld rounds\n", num(in, "pages_received"),
	       num(in, "bytes_received"), num(in, "rounds"));
	print_ready_memory(json_object_get(in, "memory"));
	if (last && *last)
		printf("Last try  failed%s: %s\n",
		       json_is_true(json_object_get(in, "last_fenced")) ? " (fenced)" : "", last);
}

/* What a guest that came by migration felt of it. */
static void print_felt(json_t *in)
{
	if (!json_object_get(in, "guest_gap_ms"))
		return;
	printf("Arrival   the guest felt a %.1f ms gap at the switchover (longest stall %.1f ms)\n",
	       json_number_value(json_object_get(in, "guest_gap_ms")),
	       json_number_value(json_object_get(in, "guest_stall_max_ms")));
}

static void print_human(json_t *r)
{
	json_t *g = json_object_get(r, "guest");
	double rate = json_real_value(json_object_get(r, "dirty_rate_pps"));
	char mem[32], bps[32];

	size_format((uint64_t)num(r, "memory_bytes"), mem, sizeof(mem));
	size_format((uint64_t)(rate * FERRY_PAGE_SIZE), bps, sizeof(bps));
	printf("VM        %s, %lld vCPU(s), %s (%s memory, %s dirty tracking)\n",
	       json_string_value(json_object_get(r, "status")), num(r, "vcpus"), mem,
	       json_string_value(json_object_get(r, "mem_backend")),
	       json_string_value(json_object_get(r, "dirty_backend")));
	printf("Workload  %s\n", json_string_value(json_object_get(r, "workload")));
	printf("Guest     %lld pages written, %lld passes, %lld self-check errors\n",
	       num(g, "pages_written"), num(g, "passes"), num(g, "verify_errors"));
	printf("Writes    %.0f pages/s (%s/s)\n", rate, bps);
	printf("Uptime    %.1f s\n", (double)num(r, "uptime_ms") / 1000);
	print_felt(json_object_get(r, "incoming"));
	if (json_object_get(r, "stop_reason"))
		printf("Stopped   %s\n", json_string_value(json_object_get(r, "stop_reason")));
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = NULL;
	bool json = false;
	json_t *r;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = control_path(optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(status_help, stdout);
			return 0;
		default:
			return option_error("status", opt, argv);
		}
	}
	if (optind < argc)
		return extra_args_error("status", argc, argv);
	if (!path)
		return usage_error("status", "--control NAME|PATH is required");
	if (control_call(path, "query-status", NULL, &r) < 0)
		return fail("%s", err_msg());
	if (json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (!json_object_get(r, "vcpus")) { /* no VM handed over yet */
		print_incoming(r);
	} else {
		print_human(r);
	}
	json_decref(r);
	return 0;
}
