/* ferry migrate: start a live migration of the VM behind a control socket,
 * show its progress, and print the report. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "migration/send/converge.h"
#include "migration/migration.h"
#include "vm/throttle.h"
#include "util/error.h"
#include "util/size.h"
#include "util/time.h"

static const char migrate_help[] =
	"Usage: ferry migrate --control PATH --to URI [OPTIONS]\n"
	"       ferry migrate --control PATH --resume --to URI\n"
	"\n"
	"Move the running VM served at PATH to the ferry waiting at URI (started with\n"
	"'ferry run --incoming URI'), while the guest keeps running. Shows a progress\n"
	"line on a terminal and ends with a report. Exit status:\n"
	"  0  completed: the guest runs on the destination\n"
	"  1  failed or cancelled before COMMIT: the guest still runs here, memory intact\n"
	"  2  usage: a flag or value it does not understand (nothing was started)\n"
	"  3  unknown: COMMIT went out and the destination did not confirm; the guest is\n"
	"     paused here and may run there. Run 'ferry migrate-resolve'.\n"
	"  4  lost: post-copy broke after the guest started on the destination and was\n"
	"     not taken up again; neither side has all its memory (see --postcopy)\n"
	"  5  with --resume: this try failed (the reason says why); post-copy is still\n"
	"     paused, and another --resume may take it up\n"
	"\n"
	"  --to URI              tcp:HOST:PORT, unix:PATH or fd:N\n"
	"  --downtime-ms N       the pause the guest may see at the end (default 300)\n"
	"  --max-bandwidth RATE  cap on the link: 100M (MiB/s) or 1Gbit (default: none)\n"
	"  --timeout S           give up after S seconds, guest still here (default 600)\n"
	"  --io-timeout-ms N     a connection that stalls this long fails (default 10000)\n"
	"  --verify              hash every page at switchover; the destination refuses\n"
	"                        to resume unless all match\n"
	"  --xbzrle[=SIZE]       send re-dirtied pages as deltas against a cache of SIZE\n"
	"                        (default 64M) of pages sent before: pays off when the guest\n"
	"                        changes a few bytes per page; from SIZE = 1/8 of guest\n"
	"                        memory up, line digests take 1/16 of guest memory out of\n"
	"                        it, and a page the cache misses goes as the 128-byte\n"
	"                        lines that changed\n"
	"  --converge STRATEGY   when the guest dirties faster than the link carries:\n"
	"                          auto (default): none while it converges by itself, then\n"
	"                            dirty-limit (dirty ring, uneven vCPUs) or sdps\n"
	"                          throttle: slow all vCPUs by a growing step (QEMU's\n"
	"                            auto-converge; see --throttle-*)\n"
	"                          sdps: slow all vCPUs exactly as much as needed, and\n"
	"                            only while needed (vMotion's stun during page send)\n"
	"                          dirty-limit: slow only the vCPUs that dirty more than\n"
	"                            their share (needs 'ferry run --dirty-backend ring')\n"
	"                          none: never slow the guest; fail if it cannot converge\n"
	"  --throttle-initial PCT, --throttle-increment PCT, --throttle-max PCT\n"
	"                        throttle steps (20, 10) and every strategy's cap (99)\n"
	"  --channels N          send pages on N data channels (connections) of their\n"
	"                        own, each with a thread that compresses and writes\n"
	"                        (0-16; default 0: pages on the main connection)\n"
	"  --compress CODEC      compress batches of 128 pages:\n"
	"                          none (default); lz4 (fast, ~2:1 on text);\n"
	"                          zstd or zstd:LEVEL (1-19; level 1 ~3:1 on text);\n"
	"                          auto: measure the link and each codec as it goes and\n"
	"                            use whichever moves pages fastest (none on a fast link)\n"
	"                        a batch that does not shrink goes uncompressed\n"
	"  --postcopy            allow a switch to post-copy: the guest moves at once and\n"
	"                        its remaining pages follow, those it touches first.\n"
	"                        With --converge auto it switches where it would slow\n"
	"                        the guest; 'ferry ctl ... migrate-start-postcopy'\n"
	"                        switches at the end of the round. Until its last page\n"
	"                        is over, the guest needs both hosts: if either dies,\n"
	"                        it is lost (exit status 4). If the link breaks, both\n"
	"                        sides pause (postcopy-paused; the guest runs on there,\n"
	"                        but a vCPU that needs a page still here waits) until\n"
	"                        'ferry ctl ... migrate-recover' on the destination and\n"
	"                        --resume here take it up again\n"
	"  --recover-timeout S   how long a broken post-copy waits for --resume before\n"
	"                        the guest is given up as lost (default 300; 0: for ever)\n"
	"  --local               to a ferry on this host, over a unix socket: hand the\n"
	"                        guest's memory over (its fd) instead of copying it; only\n"
	"                        the vCPU and device state move, so the pause does not\n"
	"                        grow with memory. Needs 'ferry run --mem-backend memfd'\n"
	"                        (or hugetlb); takes --verify, --timeout, --io-timeout-ms\n"
	"  --tls-creds DIR       speak TLS 1.3 on every connection, with the credentials\n"
	"                        in DIR: ca-cert.pem, client-cert.pem, client-key.pem\n"
	"                        (x509: each side checks the other's certificate), or\n"
	"                        keys.psk (IDENTITY:HEXKEY); the destination needs\n"
	"                        'ferry run --incoming URI --tls-creds DIR' too\n"
	"  --tls-hostname NAME   the name the destination's certificate must carry\n"
	"  --resume              with --to URI only: take a post-copy paused on a broken\n"
	"                        link up again at URI, where the destination listens\n"
	"                        (migrate-recover); the pages it still lacks follow\n"
	"  --json                print the final report as one JSON object (last line)\n"
	"\n"
	"Example:\n"
	"  ferry run --incoming tcp:0.0.0.0:4444 --control /tmp/dst.sock &   # on the destination\n"
	"  ferry migrate --control /tmp/src.sock --to tcp:dst-host:4444 --verify\n"
	"  ferry migrate --control /tmp/src.sock --to tcp:dst-host:4444 --channels 2 --compress auto\n"
	"  ferry migrate --control /tmp/src.sock --to unix:/tmp/dst.mig --local   # same host\n"
	"  # post-copy whose link broke: on the destination, then here\n"
	"  ferry ctl --control /tmp/dst.sock migrate-recover '{\"uri\": \"tcp:0.0.0.0:4445\"}'\n"
	"  ferry migrate --control /tmp/src.sock --resume --to tcp:dst-host:4445\n";

struct migrate_opts {
	const char *control;
	json_t *args;
	bool json;
	bool resume;
};

/* A whole number from min to max for flag, as key. */
static int add_int(json_t *args, const char *key, const char *flag, const char *value,
		   long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (end == value || *end || errno == ERANGE || v < min || v > max)
		return usage_error("migrate", "%s '%s' is not a whole number from %lld to %lld",
				   flag, value, min, max);
	json_object_set_new(args, key, json_integer(v));
	return 0;
}

static int add_converge(json_t *args, const char *value)
{
	enum converge_strategy s;

	if (converge_parse(value, &s) < 0)
		return usage_error("migrate", "%s", err_msg());
	json_object_set_new(args, "converge", json_string(value));
	return 0;
}

static int add_compress(json_t *args, const char *value)
{
	struct mig_compress c;

	if (mig_compress_parse(value, &c) < 0)
		return usage_error("migrate", "%s", err_msg());
	json_object_set_new(args, "compress", json_string(value));
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

static int add_xbzrle(json_t *args, const char *value)
{
	uint64_t bytes = 64ull << 20;

	if (value && (size_parse(value, &bytes) < 0 || bytes < (1u << 20)))
		return usage_error("migrate", "--xbzrle=%s is not a cache size of at least 1M",
				   value);
	json_object_set_new(args, "xbzrle-cache", json_integer((json_int_t)bytes));
	return 0;
}

/* A directory, absolute: the ferry that uses it may run elsewhere. */
static int add_dir(json_t *args, const char *key, const char *flag, const char *value)
{
	char *abs = realpath(value, NULL);

	if (!abs)
		return usage_error("migrate", "%s %s: %s", flag, value, strerror(errno));
	json_object_set_new(args, key, json_string(abs));
	free(abs);
	return 0;
}

/* --local moves no page: the options about pages are refused. */
static int check_local(json_t *args)
{
	const char *key;
	json_t *v;

	if (!json_object_get(args, "local"))
		return 0;
	json_object_foreach(args, key, v)
	{
		if (!mig_local_takes(key))
			return usage_error(
				"migrate",
				"--local sends no page, so --%s does not apply (it takes "
				"--verify, --timeout and --io-timeout-ms)",
				strcmp(key, "xbzrle-cache") ? key : "xbzrle");
	}
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
		{ "xbzrle", optional_argument, NULL, 'x' },
		{ "converge", required_argument, NULL, 'c' },
		{ "throttle-initial", required_argument, NULL, '1' },
		{ "throttle-increment", required_argument, NULL, '2' },
		{ "throttle-max", required_argument, NULL, '3' },
		{ "channels", required_argument, NULL, 'n' },
		{ "compress", required_argument, NULL, 'z' },
		{ "postcopy", no_argument, NULL, 'P' },
		{ "local", no_argument, NULL, 'L' },
		{ "recover-timeout", required_argument, NULL, 'R' },
		{ "resume", no_argument, NULL, 'r' },
		{ "tls-creds", required_argument, NULL, 'C' },
		{ "tls-hostname", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, rc = 0;

	opterr = 0;
	while (rc == 0 && (opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o->control = control_path(optarg);
			break;
		case 't':
			json_object_set_new(o->args, "uri", json_string(optarg));
			break;
		case 'd':
			rc = add_int(o->args, "downtime-ms", "--downtime-ms", optarg, 1,
				     MIG_DOWNTIME_MS_MAX);
			break;
		case 'b':
			rc = add_rate(o->args, optarg);
			break;
		case 'T':
			rc = add_int(o->args, "timeout", "--timeout", optarg, 0, MIG_TIMEOUT_S_MAX);
			break;
		case 'i':
			rc = add_int(o->args, "io-timeout-ms", "--io-timeout-ms", optarg,
				     MIG_IO_TIMEOUT_MS_MIN, MIG_IO_TIMEOUT_MS_MAX);
			break;
		case 'v':
			json_object_set_new(o->args, "verify", json_true());
			break;
		case 'P':
			json_object_set_new(o->args, "postcopy", json_true());
			break;
		case 'L':
			json_object_set_new(o->args, "local", json_true());
			break;
		case 'C':
			rc = add_dir(o->args, "tls-creds", "--tls-creds", optarg);
			break;
		case 'H':
			json_object_set_new(o->args, "tls-hostname", json_string(optarg));
			break;
		case 'R':
			rc = add_int(o->args, "recover-timeout", "--recover-timeout", optarg, 0,
				     MIG_TIMEOUT_S_MAX);
			break;
		case 'r':
			o->resume = true;
			break;
		case 'x':
			rc = add_xbzrle(o->args, optarg);
			break;
		case 'c':
			rc = add_converge(o->args, optarg);
			break;
		case '1':
			rc = add_int(o->args, "throttle-initial", "--throttle-initial", optarg, 1,
				     THROTTLE_MAX_PCT);
			break;
		case '2':
			rc = add_int(o->args, "throttle-increment", "--throttle-increment", optarg,
				     1, THROTTLE_MAX_PCT);
			break;
		case '3':
			rc = add_int(o->args, "throttle-max", "--throttle-max", optarg, 1,
				     THROTTLE_MAX_PCT);
			break;
		case 'n':
			rc = add_int(o->args, "channels", "--channels", optarg, 0, CHANNELS_MAX);
			break;
		case 'z':
			rc = add_compress(o->args, optarg);
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
	if (rc == 0 && optind < argc)
		return extra_args_error("migrate", argc, argv);
	if (rc == 0 && !o->control)
		return usage_error("migrate", "--control PATH is required");
	if (rc == 0 && !json_object_get(o->args, "uri"))
		return usage_error("migrate", "--to URI is required");
	if (rc == 0 && o->resume && json_object_size(o->args) > 1)
		return usage_error("migrate", "--resume takes only --to (and --json): the "
					      "migration goes on as it was asked");
	if (rc == 0 && o->resume)
		json_object_set_new(o->args, "resume", json_true());
	return rc ? rc : check_local(o->args);
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
		"\r\033[K%-10s round %d  sent %s  remaining %.0f pages  %s/s  dirty %.0f pages/s  expect %.0f ms  throttle %.0f%%",
		json_string_value(json_object_get(s, "status")), (int)num(s, "rounds"), sent,
		num(s, "remaining_pages"), rate, num(s, "dirty_rate_pps"),
		num(s, "expected_downtime_ms") > 1e9 ? 0 : num(s, "expected_downtime_ms"),
		num(json_object_get(s, "converge"), "throttle_pct"));
}

/* One line per channel: what went, how well it shrank, what it cost. */
static void report_pipeline(json_t *pl)
{
	json_t *z = json_object_get(pl, "compress"), *c;
	size_t i;

	if (!num(pl, "data_channels") &&
	    !strcmp(json_string_value(json_object_get(z, "asked")), "none"))
		return; /* the plain case: the lines above say it all */

	printf("  channels  %d data channel(s), compress %s (now %s, %d changes)\n",
	       (int)num(pl, "data_channels"), json_string_value(json_object_get(z, "asked")),
	       json_string_value(json_object_get(z, "now")), (int)num(z, "changes"));
	json_array_foreach(json_object_get(pl, "channels"), i, c) printf(
		"            #%d %.1f MiB sent for %.1f MiB of pages (%.2f:1), %.0f batches (%.0f compressed, %.0f did not shrink), compress %.0f ms CPU, decompress %.0f ms CPU\n",
		(int)num(c, "index"), num(c, "bytes") / 1048576, num(c, "raw_bytes") / 1048576,
		num(c, "ratio"), num(c, "batches"), num(c, "compressed"), num(c, "skipped"),
		num(c, "compress_cpu_ms"), num(c, "decompress_cpu_ms"));
	json_array_foreach(json_object_get(z, "log"), i, c)
		printf("            at %.0f ms: %s (link %.0f MiB/s, ratio %.2f:1)\n",
		       num(c, "t_ms"), json_string_value(json_object_get(c, "codec")),
		       num(c, "link_mbps"), num(c, "ratio"));
}

static void report_postcopy(json_t *p)
{
	json_t *ms;
	size_t i;

	if (!p)
		return;
	printf("  postcopy  %.0f ms after the switch: %.0f pages, %.0f asked for in %.0f requests (%.0f faults); a page's wait: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       num(p, "ms"), num(p, "pending_pages"), num(p, "pages_asked"), num(p, "requests"),
	       num(p, "faults"), num(p, "fault_wait_p50_ms"), num(p, "fault_wait_p99_ms"),
	       num(p, "fault_wait_max_ms"));
	printf("            a page's wait, count by microseconds:");
	json_array_foreach(json_object_get(p, "fault_wait_hist"), i, ms)
		printf(" <%.0f: %.0f", num(ms, "below_us"), num(ms, "count"));
	printf("\n            vCPUs blocked on pages (ms):");
	json_array_foreach(json_object_get(p, "vcpu_blocked_ms"), i, ms)
		printf(" %.1f", json_number_value(ms));
	printf("\n");
	if (num(p, "recoveries"))
		printf("            %.0f broken link(s) taken up again; the last back %.1f ms after --resume\n",
		       num(p, "recoveries"), num(p, "recover_ms"));
}

void print_migration_report(json_t *s)
{
	json_t *pages = json_object_get(s, "pages"), *ph = json_object_get(s, "phases");
	json_t *x = json_object_get(s, "xbzrle"), *c = json_object_get(s, "converge"), *d;
	char sent[32], rate[32];
	size_t i;

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
	if (json_is_true(json_object_get(s, "local"))) {
		printf("  local     the memory goes over as its fd, not copied: %s sent\n", sent);
		printf("  verify    %s\n", json_string_value(json_object_get(s, "verify")));
		return;
	}
	printf("  sent      %s at %s/s: %.0f raw pages, %.0f zero pages, %.0f XBZRLE pages\n", sent,
	       rate, num(pages, "raw"), num(pages, "zero"), num(pages, "xbzrle"));
	if (x)
		printf("  xbzrle    cache %.0f MiB, hit rate %.0f%%, %.0f overflows; line digests %.0f MiB, %.0f misses as line deltas; saved %.1f MiB, encoding at %.0f MB/s\n",
		       num(x, "cache_bytes") / 1048576, num(x, "hit_rate") * 100,
		       num(x, "overflows"), num(x, "digest_bytes") / 1048576, num(x, "line_pages"),
		       num(x, "bytes_saved") / 1048576, num(x, "encode_mbps"));
	printf("  converge  %s (used: %s), throttle at most %.0f%%\n",
	       json_string_value(json_object_get(c, "strategy")),
	       json_string_value(json_object_get(c, "used")), num(c, "throttle_pct_max"));
	json_array_foreach(json_object_get(c, "decisions"), i, d)
		printf("            round %.0f: %s\n", num(d, "round"),
		       json_string_value(json_object_get(d, "decision")));
	report_pipeline(json_object_get(s, "pipeline"));
	report_postcopy(json_object_get(s, "postcopy"));
	printf("  verify    %s\n", json_string_value(json_object_get(s, "verify")));
}

static bool final_status(const char *s)
{
	return strcmp(s, "setup") && strcmp(s, "active") && strcmp(s, "switchover") &&
	       strcmp(s, "postcopy-active") && strcmp(s, "postcopy-paused") &&
	       strcmp(s, "postcopy-recover");
}

/* A post-copy paused on a broken link: say so once, with what to do. */
static bool tell_paused(json_t *s, bool told, bool tty)
{
	bool paused = !strcmp(json_string_value(json_object_get(s, "status")), "postcopy-paused");

	if (paused && !told)
		fprintf(stderr, "%sferry migrate: %s\n", tty ? "\r\033[K" : "",
			json_string_value(json_object_get(s, "reason")));
	return paused;
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .args = json_object() };
	bool tty = isatty(STDERR_FILENO) && !getenv("CI"), paused = false;
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
	for (uint64_t wait_ms = 2;; wait_ms = wait_ms < 50 ? wait_ms * 2 : 100) {
		json_decref(r);
		time_sleep_ns(wait_ms * NS_PER_MS); /* a local migration ends in ms */
		if (control_call(o.control, "query-migrate", NULL, &r) < 0)
			return fail("lost the source while migrating: %s", err_msg());
		status = json_string_value(json_object_get(r, "status"));
		if (final_status(status))
			break;
		paused = tell_paused(r, paused, tty);
		if (paused && o.resume)
			break; /* this try failed: the reason says why */
		if (tty)
			progress_line(r);
	}
	if (tty)
		fputs("\r\033[K", stderr);
	if (o.json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_migration_report(r);
	}
	rc = !strcmp(status, "completed")	  ? 0
	     : !strcmp(status, "unknown")	  ? EXIT_UNKNOWN
	     : !strcmp(status, "lost")		  ? EXIT_LOST
	     : !strcmp(status, "postcopy-paused") ? EXIT_PAUSED
						  : 1;
	json_decref(r);
	return rc;
}
