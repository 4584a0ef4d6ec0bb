/* ferry predict: measure a running guest's dirty rate, then forecast a
 * migration over a given link with each convergence strategy. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "control/commands.h"
#include "migration/send/converge.h"
#include "migration/plan/predict.h"
#include "util/size.h"

static const char predict_help[] =
	"Usage: ferry predict --control NAME|PATH --link RATE [OPTIONS]\n"
	"\n"
	"Measure how the guest at PATH dirties memory (as 'ferry dirtyrate' does),\n"
	"then forecast migrating it over a link of RATE with each strategy: total\n"
	"time, downtime, rounds, and how much the guest is slowed. The forecast\n"
	"replays ferry's own rounds and throttle decisions; it assumes the link, not\n"
	"the CPUs, limits the copy. A vCPU that sleeps between bursts keeps its pace\n"
	"until a throttle takes more than its idle time (dirtyrate measures how busy\n"
	"each vCPU is). Each forecast has a range: the guest at its quietest and\n"
	"busiest tenth of the time measured, on the link given and 5% either side.\n"
	"\n"
	"  --link RATE          the link: 1Gbit, 250Mbit, or bytes per second like 100M\n"
	"  --seconds N          measure for N seconds (default 2)\n"
	"  --downtime-ms N      the downtime limit to plan for (default 300)\n"
	"  --xbzrle=SIZE        the XBZRLE cache of the xbzrle row (default 64M)\n"
	"  --json               print measurement and forecasts as one JSON object\n"
	"\n"
	"Example:\n"
	"  ferry predict --control /tmp/vm.sock --link 1Gbit\n";

struct predict_opts {
	const char *control;
	uint64_t link_bps, xbzrle_bytes;
	int seconds;
	uint64_t downtime_ms;
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

static void input_from(json_t *m, const struct predict_opts *o, struct predict_input *in)
{
	json_t *vcpus = json_object_get(m, "vcpu_rate_pps"), *v;
	json_t *busy = json_object_get(m, "vcpu_busy");
	size_t i;

	memset(in, 0, sizeof(*in));
	in->mem_pages = (uint64_t)num(m, "mem_pages");
	in->zero_pages = (uint64_t)num(m, "zero_pages");
	in->wss_pages = (uint64_t)num(m, "working_set_pages");
	in->rate_pps = num(m, "dirty_rate_pps");
	in->rate_p10_pps = num(m, "dirty_rate_p10_pps");
	in->rate_p90_pps = num(m, "dirty_rate_p90_pps");
	in->nr_vcpus = (unsigned)num(m, "vcpus");
	in->per_vcpu = vcpus != NULL;
	json_array_foreach(vcpus, i, v) if (i < VM_MAX_VCPUS) in->vcpu_pps[i] =
		json_number_value(v);
	json_array_foreach(busy, i, v) if (i < VM_MAX_VCPUS) in->vcpu_busy[i] =
		json_number_value(v);
	in->xbzrle_bytes_per_page = num(m, "xbzrle_bytes_per_page");
	in->line_bytes_per_page = num(m, "line_bytes_per_page");
	in->link_bps = (double)o->link_bps;
	/* Hand-off and restore, plus the vCPU state over the link. */
	mig_params_default(&in->params);
	in->params.downtime_ms = o->downtime_ms;
}

static json_t *forecast(const struct predict_input *base, enum converge_strategy s,
			uint64_t xbzrle_bytes, const char *label)
{
	struct predict_input in = *base;
	struct prediction p;
	struct predict_range range;
	json_t *pct = json_array(), *f;

	in.params.converge = s;
	in.params.xbzrle_cache_bytes = xbzrle_bytes;
	predict(&in, &p);
	predict_range(&in, &p, &range);
	for (unsigned i = 0; i < in.nr_vcpus; i++)
		json_array_append_new(pct, json_integer(p.pct[i]));
	f = json_pack("{s:s,s:s,s:b,s:f,s:f,s:i,s:i,s:o,s:s,s:o}", "name", label, "strategy",
		      converge_name(s), "converges", p.converges, "total_ms", p.total_ms,
		      "downtime_ms", p.downtime_ms, "rounds", (int)p.rounds, "throttle_pct_max",
		      (int)p.pct_max, "throttle_pct", pct, "reason", p.why, "round_log",
		      control_round_log_json(p.round_log, p.rounds));
	if (p.converges) /* the upper ends are null where a case does not converge */
		json_object_update_new(
			f,
			json_pack("{s:[f,o],s:[f,o]}", "total_ms_range", range.total_ms[0],
				  range.converges ? json_real(range.total_ms[1]) : json_null(),
				  "downtime_ms_range", range.downtime_ms[0],
				  range.converges ? json_real(range.downtime_ms[1]) : json_null()));
	return f;
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
	struct predict_opts o = { .seconds = 2, .downtime_ms = 300, .xbzrle_bytes = 64ull << 20 };
	struct predict_input in;
	json_t *m, *rows, *f;
	size_t i;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = measure_dirty_rate(o.control, o.seconds, &m);
	if (rc)
		return rc;
	input_from(m, &o, &in);
	rows = json_array();
	json_array_append_new(rows, forecast(&in, CONVERGE_NONE, 0, "none"));
	json_array_append_new(rows, forecast(&in, CONVERGE_NONE, o.xbzrle_bytes, "xbzrle"));
	json_array_append_new(rows, forecast(&in, CONVERGE_THROTTLE, 0, "throttle"));
	json_array_append_new(rows, forecast(&in, CONVERGE_SDPS, 0, "sdps"));
	if (in.per_vcpu)
		json_array_append_new(rows, forecast(&in, CONVERGE_DIRTY_LIMIT, 0, "dirty-limit"));
	json_array_append_new(rows, forecast(&in, CONVERGE_AUTO, 0, "auto"));
	if (o.json) {
		json_t *all = json_pack("{s:o,s:I,s:I,s:o}", "measured", m, "link_bps",
					(json_int_t)o.link_bps, "downtime_ms",
					(json_int_t)o.downtime_ms, "predictions", rows);

		json_dumpf(all, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(all);
		return 0;
	}
	printf("guest dirties %.1f MiB/s over a working set of %.0f MiB; link %.1f MiB/s; downtime limit %llu ms\n",
	       num(m, "dirty_rate_mibps"), num(m, "working_set_pages") / 256,
	       (double)o.link_bps / 1048576, (unsigned long long)o.downtime_ms);
	printf("  %-12s %-24s %-22s %4s   %s\n", "strategy", "total (range)", "downtime (range)",
	       "rounds", "throttle per vCPU");
	json_array_foreach(rows, i, f) print_row(f);
	if (!in.per_vcpu)
		printf("  (dirty-limit needs per-vCPU rates: run the VM with --dirty-backend ring)\n");
	json_decref(rows);
	json_decref(m);
	return 0;
}
