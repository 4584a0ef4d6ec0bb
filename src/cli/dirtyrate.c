/* ferry dirtyrate: measure how fast a running guest dirties memory. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "migration/plan/dirtyrate.h"
#include "util/error.h"
#include "util/time.h"

static const char dirtyrate_help[] =
	"Usage: ferry dirtyrate --control NAME|PATH [--seconds N] [--json]\n"
	"\n"
	"Measure how fast the guest served at PATH dirties its memory, without\n"
	"migrating it: the rate (pages first written in each 100 ms window), its\n"
	"peak, the working set (distinct pages over the whole time), each vCPU's rate\n"
	"(VMs run with --dirty-backend ring), zero pages, and the size XBZRLE would\n"
	"send a re-dirtied page in. 'ferry predict' turns this into a forecast.\n"
	"\n"
	"  --seconds N   measure for N seconds, 1 to 60 (default 2)\n"
	"  --json        print the result as one JSON object\n";

int measure_dirty_rate(const char *control, int seconds, json_t **out)
{
	json_t *args = json_pack("{s:i}", "seconds", seconds), *r = NULL;
	const char *status;
	int rc = control_call(control, "calc-dirty-rate", args, &r);

	json_decref(args);
	if (rc < 0)
		return fail("%s", err_msg());
	for (;;) {
		json_decref(r);
		time_sleep_ns(100 * NS_PER_MS);
		if (control_call(control, "query-dirty-rate", NULL, &r) < 0)
			return fail("lost the VM while measuring: %s", err_msg());
		status = json_string_value(json_object_get(r, "status"));
		if (strcmp(status, "measuring"))
			break;
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "\r\033[Kmeasuring the dirty rate: %.1f of %d s",
				json_number_value(json_object_get(r, "elapsed_s")), seconds);
	}
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
	if (strcmp(status, "measured")) {
		rc = fail("the measurement failed: %s",
			  json_string_value(json_object_get(r, "reason")));
		json_decref(r);
		return rc;
	}
	*out = r;
	return 0;
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

void print_codecs(json_t *codecs)
{
	const char *name, *sep = " ";
	json_t *c;

	printf("compression ");
	json_object_foreach(codecs, name, c)
	{
		printf("%s%s to %.0f%% at %.0f MB/s", sep, name, 100 * num(c, "ratio"),
		       num(c, "mbps"));
		sep = ", ";
	}
	printf(" (a sample of the guest's pages, one core)\n");
}

static void print_result(json_t *r)
{
	json_t *vcpus = json_object_get(r, "vcpu_rate_pps"), *v;
	json_t *busy = json_object_get(r, "vcpu_busy");
	size_t i;

	printf("dirty rate   %.0f pages/s (%.1f MiB/s); in %d ms windows: peak %.0f, quietest "
	       "tenth %.0f, busiest tenth %.0f\n",
	       num(r, "dirty_rate_pps"), num(r, "dirty_rate_mibps"), DIRTYRATE_WINDOW_MS,
	       num(r, "peak_rate_pps"), num(r, "dirty_rate_p10_pps"), num(r, "dirty_rate_p90_pps"));
	printf("working set  %.0f pages (%.1f MiB) of %.0f; %.0f pages are zero\n",
	       num(r, "working_set_pages"), num(r, "working_set_pages") / 256, num(r, "mem_pages"),
	       num(r, "zero_pages"));
	if (vcpus) {
		printf("per vCPU    ");
		json_array_foreach(vcpus, i, v) printf(" %zu: %.0f", i, json_number_value(v));
		printf(" pages/s\n");
	}
	printf("busy        ");
	json_array_foreach(busy, i, v) printf(" %zu: %.0f%%", i, 100 * json_number_value(v));
	printf(" of the time (not asleep in the guest)\n");
	print_codecs(json_object_get(r, "codecs"));
	printf("copy         ferry sends %.0f MB/s on this host (one sender and its reader on loopback TCP),\n"
	       "             %.0f MB/s with %.0f side by side (data channels)\n",
	       num(r, "copy_mbps"), num(r, "copy_parallel_mbps"), num(r, "copy_parallel_senders"));
	printf("pause        a dirty-log sync takes %.2f ms; --verify would add %.1f ms (hashing every\n"
	       "             page on both sides)\n",
	       json_number_value(json_object_get(r, "sync_ms")),
	       json_number_value(json_object_get(r, "verify_ms")));
	if (json_object_get(r, "xbzrle_bytes_per_page"))
		printf("XBZRLE       a re-dirtied page would go as %.0f bytes, %.0f as a delta of lines (%.0f pages sampled)\n",
		       num(r, "xbzrle_bytes_per_page"), num(r, "line_bytes_per_page"),
		       num(r, "xbzrle_samples"));
}

int cmd_dirtyrate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *control = NULL;
	int opt, seconds = 2, json = 0, rc;
	json_t *r;
	char *end;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			control = control_path(optarg);
			break;
		case 'n':
			seconds = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end || seconds < 1 || seconds > 60)
				return usage_error(
					"dirtyrate",
					"--seconds '%s' is not a whole number from 1 to 60",
					optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(dirtyrate_help, stdout);
			return 0;
		default:
			return option_error("dirtyrate", opt, argv);
		}
	}
	if (optind < argc)
		return extra_args_error("dirtyrate", argc, argv);
	if (!control)
		return usage_error("dirtyrate", "--control NAME|PATH is required");
	rc = measure_dirty_rate(control, seconds, &r);
	if (rc)
		return rc;
	if (json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_result(r);
	}
	json_decref(r);
	return 0;
}
