/* ferry migrate: start a live migration of the VM behind a control socket,
 * show its progress, and print the report. */
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
#include "util/time.h"

static const char migrate_help[] =
	"Usage: ferry migrate --control PATH --to URI [OPTIONS]\n"
	"\n"
	"Move the running VM served at PATH to the ferry waiting at URI (started with\n"
	"'ferry run --incoming URI'), while the guest keeps running. Shows a progress\n"
	"line on a terminal and ends with a report. Exits 0 when the guest runs on the\n"
	"destination; otherwise it says why, and the guest still runs here.\n"
	"\n"
	"  --to URI              tcp:HOST:PORT, unix:PATH or fd:N\n"
	"  --downtime-ms N       the pause the guest may see at the end (default 300)\n"
	"  --max-bandwidth RATE  cap on the link: 100M (MiB/s) or 1Gbit (default: none)\n"
	"  --timeout S           give up after S seconds, guest still here (default 600)\n"
	"  --io-timeout-ms N     a connection that stalls this long fails (default 10000)\n"
	"  --verify              hash every page at switchover; the destination refuses\n"
	"                        to resume unless all match\n"
	"  --json                print the final report as one JSON object (last line)\n"
	"\n"
	"Example:\n"
	"  ferry run --incoming tcp:0.0.0.0:4444 --control /tmp/dst.sock &   # on the destination\n"
	"  ferry migrate --control /tmp/src.sock --to tcp:dst-host:4444 --verify\n";

struct migrate_opts {
	const char *control;
	json_t *args;
	bool json;
};

static int add_int(json_t *args, const char *key, const char *flag, const char *value)
{
	char *end;
	long long v = strtoll(value, &end, 10);

	if (end == value || *end || v < 0)
		return usage_error("migrate", "%s '%s' is not a whole number", flag, value);
	json_object_set_new(args, key, json_integer(v));
	return 0;
}

static int add_rate(json_t *args, const char *value)
{
	uint64_t bps;

	if (rate_parse(value, &bps) < 0)
		return usage_error("migrate",
				   "--max-bandwidth '%s' is not a rate like 100M or 1Gbit", value);
	json_object_set_new(args, "max-bandwidth", json_integer((json_int_t)bps));
	return 0;
}

static int parse_args(int argc, char **argv, struct migrate_opts *o)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "to", required_argument, NULL, 't' },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "io-timeout-ms", required_argument, NULL, 'i' },
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, rc = 0;

	opterr = 0;
	while (rc == 0 && (opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->control = optarg;
			break;
		case 't':
			json_object_set_new(o->args, "uri", json_string(optarg));
			break;
		case 'd':
			rc = add_int(o->args, "downtime-ms", "--downtime-ms", optarg);
			break;
		case 'b':
			rc = add_rate(o->args, optarg);
			break;
		case 'T':
			rc = add_int(o->args, "timeout", "--timeout", optarg);
			break;
		case 'i':
			rc = add_int(o->args, "io-timeout-ms", "--io-timeout-ms", optarg);
			break;
		case 'v':
			json_object_set_new(o->args, "verify", json_true());
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(migrate_help, stdout);
			return -1;
		default:
			return option_error("migrate", opt, argv);
		}
	}
	if (rc == 0 && !o->control)
		return usage_error("migrate", "--control PATH is required");
	if (rc == 0 && !json_object_get(o->args, "uri"))
		return usage_error("migrate", "--to URI is required");
	return rc;
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static void progress_line(json_t *s)
{
	char sent[32], rate[32];

	size_format((uint64_t)num(s, "bytes_sent"), sent, sizeof(sent));
	size_format((uint64_t)num(s, "bandwidth_bps"), rate, sizeof(rate));
	fprintf(stderr,
		"\r\033[K%-10s round %d  sent %s  remaining %.0f pages  %s/s  dirty %.0f pages/s  expect %.0f ms",
		json_string_value(json_object_get(s, "status")), (int)num(s, "rounds"), sent,
		num(s, "remaining_pages"), rate, num(s, "dirty_rate_pps"),
		num(s, "expected_downtime_ms") > 1e9 ? 0 : num(s, "expected_downtime_ms"));
}

static void report(json_t *s)
{
	json_t *pages = json_object_get(s, "pages"), *ph = json_object_get(s, "phases");
	char sent[32], rate[32];

	size_format((uint64_t)num(s, "bytes_sent"), sent, sizeof(sent));
	size_format((uint64_t)num(s, "bandwidth_bps"), rate, sizeof(rate));
	printf("Migration %s", json_string_value(json_object_get(s, "status")));
	if (json_object_get(s, "reason"))
		printf(": %s", json_string_value(json_object_get(s, "reason")));
	printf("\n  total     %.0f ms (setup %.0f ms), %d rounds\n", num(s, "total_ms"),
	       num(s, "setup_ms"), (int)num(s, "rounds"));
	printf("  downtime  %.1f ms (pause %.1f, final sync %.1f, final pages %.1f, state %.1f, verify %.1f, hand-off %.1f, resume %.1f)\n",
	       num(s, "downtime_ms"), num(ph, "pause_ms"), num(ph, "final_sync_ms"),
	       num(ph, "final_pages_ms"), num(ph, "state_ms"), num(ph, "verify_ms"),
	       num(ph, "handoff_ms"), num(ph, "resume_ms"));
	printf("  sent      %s at %s/s: %.0f raw pages, %.0f zero pages\n", sent, rate,
	       num(pages, "raw"), num(pages, "zero"));
	printf("  verify    %s\n", json_string_value(json_object_get(s, "verify")));
}

static bool final_status(const char *s)
{
	return strcmp(s, "setup") && strcmp(s, "active") && strcmp(s, "switchover");
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .args = json_object() };
	bool tty = isatty(STDERR_FILENO) && !getenv("CI");
	json_t *r = NULL;
	const char *status;
	int rc = parse_args(argc, argv, &o);

	if (rc) {
		json_decref(o.args);
		return rc < 0 ? 0 : rc;
	}
	rc = control_call(o.control, "migrate", o.args, &r);
	json_decref(o.args);
	if (rc < 0)
		return fail("%s", err_msg());
	for (;;) {
		json_decref(r);
		time_sleep_ns(100 * NS_PER_MS);
		if (control_call(o.control, "query-migrate", NULL, &r) < 0)
			return fail("lost the source while migrating: %s", err_msg());
		status = json_string_value(json_object_get(r, "status"));
		if (final_status(status))
			break;
		if (tty)
			progress_line(r);
	}
	if (tty)
		fputs("\r\033[K", stderr);
	if (o.json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		report(r);
	}
	rc = strcmp(status, "completed") ? 1 : 0;
	json_decref(r);
	return rc;
}
