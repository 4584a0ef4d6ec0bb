/* ferry predict: measure a running guest's dirty rate, then forecast a
 * migration over a given link with each convergence strategy. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "control/client.h"
#include "migration/migration.h"
#include "stream/format.h"
#include "util/error.h"
#include "util/size.h"

static const char predict_help[] =
	"Usage: ferry predict --control NAME|PATH --link RATE [OPTIONS]\n"
	"\n"
	"Measure how the guest at PATH dirties memory (as 'ferry dirtyrate' does),\n"
	"then forecast migrating it over a link of RATE with each strategy: total\n"
	"time, downtime, rounds, and how much the guest is slowed. The forecast\n"
	"replays ferry's own rounds and throttle decisions, at the link's rate or\n"
	"the rate ferry copies at on this host, whichever is slower. A vCPU that\n"
	"sleeps between bursts keeps its pace until a throttle takes more than its\n"
	"idle time (dirtyrate measures how busy each vCPU is). Each forecast has a\n"
	"range: the guest at its quietest and busiest tenth of the time measured, on\n"
	"the link given and 5% either side.\n"
	"\n"
	"  --link RATE          the link: 1Gbit, 250Mbit, or bytes per second like 100M\n"
	"  --seconds N          measure for N seconds (default 2)\n"
	"  --downtime-ms N      the downtime limit to plan for (default 300)\n"
	"  --xbzrle=SIZE        the XBZRLE cache of the xbzrle row (default 64M)\n"
	"  --compress CODEC     forecast with compression: lz4, zstd or auto, each\n"
	"                       priced by what it made of a sample of the guest's pages\n"
	"  --channels N         data channels: workers that compress side by side\n"
	"  --verify             forecast with ferry migrate --verify: hashing every page\n"
	"                       on both sides adds to the pause (timed on this guest)\n"
	"  --json               print measurement and forecasts as one JSON object\n"
	"\n"
	"Example:\n"
	"  ferry predict --control /tmp/vm.sock --link 1Gbit\n";

struct predict_opts {
	const char *control;
	uint64_t link_bps, xbzrle_bytes;
	int seconds;
	uint64_t downtime_ms;
	const char *compress;
	long channels; /* -1: not given */
	bool verify;
	bool json;
};

static int parse_args(int argc, char **argv, struct predict_opts *o)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "link", required_argument, NULL, 'l' },
		{ "seconds", required_argument, NULL, 'n' },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "xbzrle", required_argument, NULL, 'x' },
		{ "compress", required_argument, NULL, 'c' },
		{ "channels", required_argument, NULL, 'C' },
		{ "verify", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;
	char *end;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->control = control_path(optarg);
			break;
		case 'l':
			if (rate_parse(optarg, &o->link_bps) < 0 || !o->link_bps)
				return usage_error("predict",
						   "--link '%s' is not a rate like 1Gbit", optarg);
			break;
		case 'n':
			o->seconds = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end || o->seconds < 1 || o->seconds > 60)
				return usage_error("predict", "--seconds '%s' is not 1 to 60",
						   optarg);
			break;
		case 'd':
			o->downtime_ms = strtoull(optarg, &end, 10);
			if (end == optarg || *end || !o->downtime_ms)
				return usage_error("predict", "--downtime-ms '%s' is not a number",
						   optarg);
			break;
		case 'x':
			if (size_parse(optarg, &o->xbzrle_bytes) < 0 ||
			    o->xbzrle_bytes < (1u << 20))
				return usage_error("predict",
						   "--xbzrle=%s is not a size of at least 1M",
						   optarg);
			break;
		case 'c': {
			struct mig_compress c;

			if (mig_compress_parse(optarg, &c) < 0)
				return usage_error(
					"predict",
					"--compress '%s' is not none, lz4, zstd, zstd:LEVEL or auto",
					optarg);
			o->compress = optarg;
			break;
		}
		case 'C':
			o->channels = strtol(optarg, &end, 10);
			if (end == optarg || *end || o->channels < 0 || o->channels > CHANNELS_MAX)
				return usage_error("predict", "--channels '%s' is not 0 to %u",
						   optarg, CHANNELS_MAX);
			break;
		case 'v':
			o->verify = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(predict_help, stdout);
			return -1;
		default:
			return option_error("predict", opt, argv);
		}
	}
	if (optind < argc)
		return extra_args_error("predict", argc, argv);
	if (!o->control)
		return usage_error("predict", "--control NAME|PATH is required");
	if (!o->link_bps)
		return usage_error("predict", "--link RATE is required, e.g. --link 1Gbit");
	return 0;
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* "3900-4800", or "3900-?" where the busier case does not converge. */
static const char *range_text(json_t *f, const char *key, int prec, char *buf, size_t len)
{
	json_t *r = json_object_get(f, key), *hi = json_array_get(r, 1);

	if (json_is_number(hi))
		snprintf(buf, len, "%.*f-%.*f", prec, json_number_value(json_array_get(r, 0)), prec,
			 json_number_value(hi));
	else
		snprintf(buf, len, "%.*f-?", prec, json_number_value(json_array_get(r, 0)));
	return buf;
}

static void print_row(json_t *f)
{
	json_t *pct = json_object_get(f, "throttle_pct"), *v;
	char total[40], down[40];
	size_t i;

	printf("  %-12s ", json_string_value(json_object_get(f, "name")));
	if (!json_is_true(json_object_get(f, "converges"))) {
		printf("does not converge: %s\n", json_string_value(json_object_get(f, "reason")));
		return;
	}
	printf("%7.0f ms %-13s %6.1f ms %-12s %4.0f   ", num(f, "total_ms"),
	       range_text(f, "total_ms_range", 0, total, sizeof(total)), num(f, "downtime_ms"),
	       range_text(f, "downtime_ms_range", 1, down, sizeof(down)), num(f, "rounds"));
	json_array_foreach(pct, i, v) printf("%s%lld%%", i ? " " : "", json_integer_value(v));
	putchar('\n');
}

int cmd_predict(int argc, char **argv)
{
	struct predict_opts o = {
		.seconds = 2, .downtime_ms = 300, .xbzrle_bytes = 64ull << 20, .channels = -1
	};
	json_t *m, *all, *args, *f;
	size_t i;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = measure_dirty_rate(o.control, o.seconds, &m);
	if (rc)
		return rc;
	json_decref(m);
	args = json_pack("{s:I,s:I,s:I}", "link-bps", (json_int_t)o.link_bps, "downtime-ms",
			 (json_int_t)o.downtime_ms, "xbzrle-cache-bytes",
			 (json_int_t)o.xbzrle_bytes);
	if (o.compress)
		json_object_set_new(args, "compress", json_string(o.compress));
	if (o.channels >= 0)
		json_object_set_new(args, "channels", json_integer(o.channels));
	if (o.verify)
		json_object_set_new(args, "verify", json_true());
	rc = control_call(o.control, "query-forecast", args, &all);
	json_decref(args);
	if (rc < 0)
		return fail("%s", err_msg());
	if (o.json) {
		json_dumpf(all, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(all);
		return 0;
	}
	m = json_object_get(all, "measured");
	printf("guest dirties %.1f MiB/s over a working set of %.0f MiB; link %.1f MiB/s; downtime limit %llu ms\n",
	       num(m, "dirty_rate_mibps"), num(m, "working_set_pages") / 256,
	       (double)o.link_bps / 1048576, (unsigned long long)o.downtime_ms);
	printf("  %-12s %-24s %-22s %4s   %s\n", "strategy", "total (range)", "downtime (range)",
	       "rounds", "throttle per vCPU");
	json_array_foreach(json_object_get(all, "predictions"), i, f) print_row(f);
	if (o.compress)
		print_codecs(json_object_get(m, "codecs"));
	if (json_array_size(json_object_get(all, "vcpus_alike")) > 1)
		printf("  (the dirty bitmap counts pages, not who wrote them: the forecast gives each of\n"
		       "   the %zu vCPUs an even share of the rate, as if they all wrote; dirty-limit\n"
		       "   needs each vCPU's rate: run the VM with --dirty-backend ring)\n",
		       json_array_size(json_object_get(all, "vcpus_alike")));
	json_decref(all);
	return 0;
}
