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
	"Usage: ferry migrate --control NAME|PATH --to URI [OPTIONS]\n"
	"       ferry migrate --control NAME|PATH --resume --to URI\n"
	"       ferry migrate --control NAME|PATH --watch [--json]\n"
	"\n"
	"Move the running VM served at PATH to the ferry waiting at URI (started with\n"
	"'ferry run --incoming URI'), while the guest keeps running. Shows a progress\n"
	"line on a terminal (off one, a line every 5 s: percent, rate, time left) and\n"
	"ends with a report. Ctrl-C cancels the migration (the guest runs on here); a\n"
	"second Ctrl-C stops waiting for the cancel to end. --watch follows a\n"
	"migration started elsewhere to its end (Ctrl-C only stops watching, the\n"
	"migration goes on). Exit status:\n"
	"  0  completed: the guest runs on the destination\n"
	"  1  failed or cancelled before COMMIT: the guest still runs here, memory intact\n"
	"  2  usage: a flag or value it does not understand (nothing was started)\n"
	"  3  unknown: COMMIT went out and the destination did not confirm; the guest is\n"
	"     paused here and may run there. Run 'ferry migrate-resolve'.\n"
	"  4  lost: post-copy broke after the guest started on the destination and was\n"
	"     not taken up again; neither side has all its memory (see --postcopy)\n"
	"  5  with --resume: this try failed (the reason says why); post-copy is still\n"
	"     paused, and another --resume may take it up\n"
	"  6  detached (Ctrl-C twice, or once with --watch): the migration (or its\n"
	"     cancel) goes on without this command\n"
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
	"  --watch               follow the migration running at PATH instead of\n"
	"                        starting one\n"
	"\n"
	"Example:\n"
	"  ferry run --incoming tcp:0.0.0.0:4444 --control /tmp/dst.sock &   # on the destination\n"
	"  ferry migrate --control /tmp/src.sock --to tcp:dst-host:4444 --verify\n"
	"  ferry migrate --control /tmp/src.sock --to tcp:dst-host:4444 --channels 2 --compress auto\n"
	"  ferry migrate --control /tmp/src.sock --to unix:/tmp/dst.mig --local   # same host\n"
	"  # post-copy whose link broke: on the destination, then here\n"
	"  ferry ctl --control /tmp/dst.sock migrate-recover '{\"uri\": \"tcp:0.0.0.0:4445\"}'\n"
	"  ferry migrate --control /tmp/src.sock --resume --to tcp:dst-host:4445\n";

static const char migrate_set_help[] =
	"Usage: ferry migrate-set --control NAME|PATH PARAMETER...\n"
	"\n"
	"Change migration parameters of the VM at PATH: a running migration takes\n"
	"--max-bandwidth, --downtime-ms and --timeout at once; every parameter is also\n"
	"the default for the next 'ferry migrate' there. Says which took effect where.\n"
	"PARAMETER is any of ferry migrate's (--max-bandwidth RATE, --downtime-ms N,\n"
	"--timeout S, --converge ..., --channels N, ...; see 'ferry migrate --help').\n"
	"\n"
	"Example: halve the rate of a migration that loads the link too much\n"
	"  ferry migrate-set --control web1 --max-bandwidth 50M\n";

static const char migrate_cancel_help[] =
	"Usage: ferry migrate-cancel --control NAME|PATH [--json]\n"
	"\n"
	"Cancel the migration of the VM at PATH, wait for it to end and print its\n"
	"report. Before COMMIT the guest runs on here, its memory intact (exit 1:\n"
	"cancelled); once COMMIT went out it is too late and the migration ends as it\n"
	"would have (exit 0: completed). Exit 2 for usage, as ferry migrate.\n";

struct migrate_opts {
	const char *control;
	json_t *args;
	bool json;
	bool resume;
	bool watch;
};

/* The command being parsed (migrate or migrate-set), for its usage errors. */
static const char *cmd_name = "migrate";

/* A whole number from min to max for flag, as key. */
static int add_int(json_t *args, const char *key, const char *flag, const char *value,
		   long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (end == value || *end || errno == ERANGE || v < min || v > max)
		return usage_error(cmd_name, "%s '%s' is not a whole number from %lld to %lld",
				   flag, value, min, max);
	json_object_set_new(args, key, json_integer(v));
	return 0;
}

static int add_converge(json_t *args, const char *value)
{
	enum converge_strategy s;

	if (converge_parse(value, &s) < 0)
		return usage_error(cmd_name, "%s", err_msg());
	json_object_set_new(args, "converge", json_string(value));
	return 0;
}

static int add_compress(json_t *args, const char *value)
{
	struct mig_compress c;

	if (mig_compress_parse(value, &c) < 0)
		return usage_error(cmd_name, "%s", err_msg());
	json_object_set_new(args, "compress", json_string(value));
	return 0;
}

static int add_rate(json_t *args, const char *value)
{
	uint64_t bps;

	if (rate_parse(value, &bps) < 0)
		return usage_error(cmd_name,
				   "--max-bandwidth '%s' is not a rate like 100M or 1Gbit", value);
	json_object_set_new(args, "max-bandwidth-bps", json_integer((json_int_t)bps));
	return 0;
}

static int add_xbzrle(json_t *args, const char *value)
{
	uint64_t bytes = 64ull << 20;

	if (value && (size_parse(value, &bytes) < 0 || bytes < (1u << 20)))
		return usage_error(cmd_name, "--xbzrle=%s is not a cache size of at least 1M",
				   value);
	json_object_set_new(args, "xbzrle-cache-bytes", json_integer((json_int_t)bytes));
	return 0;
}

/* A directory, absolute: the ferry that uses it may run elsewhere. */
static int add_dir(json_t *args, const char *key, const char *flag, const char *value)
{
	char *abs = realpath(value, NULL);

	if (!abs)
		return usage_error(cmd_name, "%s %s: %s", flag, value, strerror(errno));
	json_object_set_new(args, key, json_string(abs));
	free(abs);
	return 0;
}

/* The flag that sets the parameter key: the key, but for those whose name
 * carries a unit the flag does not. */
static const char *flag_of(const char *key)
{
	static const char *const renamed[][2] = {
		{ "max-bandwidth-bps", "max-bandwidth" },
		{ "xbzrle-cache-bytes", "xbzrle" },
		{ "timeout-s", "timeout" },
		{ "recover-timeout-s", "recover-timeout" },
		{ "throttle-initial-pct", "throttle-initial" },
		{ "throttle-increment-pct", "throttle-increment" },
		{ "throttle-max-pct", "throttle-max" },
	};

	for (size_t i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++)
		if (!strcmp(renamed[i][0], key))
			return renamed[i][1];
	return key;
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
			return usage_error(cmd_name,
					   "--local %s, so --%s does not apply (it takes --verify, "
					   "--timeout and --io-timeout-ms)",
					   mig_local_why_not(key), flag_of(key));
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
		{ "watch", no_argument, NULL, 'w' },
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
			rc = add_int(o->args, "timeout-s", "--timeout", optarg, 0,
				     MIG_TIMEOUT_S_MAX);
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
			rc = add_int(o->args, "recover-timeout-s", "--recover-timeout", optarg, 0,
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
			rc = add_int(o->args, "throttle-initial-pct", "--throttle-initial", optarg,
				     1, THROTTLE_MAX_PCT);
			break;
		case '2':
			rc = add_int(o->args, "throttle-increment-pct", "--throttle-increment",
				     optarg, 1, THROTTLE_MAX_PCT);
			break;
		case '3':
			rc = add_int(o->args, "throttle-max-pct", "--throttle-max", optarg, 1,
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
		case 'w':
			o->watch = true;
			break;
		case 'h':
			fputs(strcmp(cmd_name, "migrate") ? migrate_set_help : migrate_help,
			      stdout);
			return -1;
		default:
			return option_error(cmd_name, opt, argv);
		}
	}
	if (rc == 0 && optind < argc)
		return extra_args_error(cmd_name, argc, argv);
	if (rc == 0 && !o->control)
		return usage_error(cmd_name, "--control NAME|PATH is required");
	if (rc == 0 && o->watch && (o->resume || json_object_size(o->args)))
		return usage_error(cmd_name, "--watch takes only --control (and --json): it "
					     "follows the migration that runs there");
	if (rc || o->watch || strcmp(cmd_name, "migrate"))
		return rc;
	if (!json_object_get(o->args, "uri"))
		return usage_error(cmd_name, "--to URI is required");
	if (o->resume && json_object_size(o->args) > 1)
		return usage_error(cmd_name, "--resume takes only --to (and --json): the "
					     "migration goes on as it was asked");
	if (o->resume)
		json_object_set_new(o->args, "resume", json_true());
	return check_local(o->args);
}

/* Start the migration, then follow it. */
static int migrate(struct migrate_opts *o)
{
	json_t *r;

	if (follow_call(o->control, "migrate", o->args, &r) < 0)
		return fail("%s", err_msg());
	json_decref(r);
	return follow_migration(&(struct follow){ .control = o->control,
						  .json = o->json,
						  .resume = o->resume,
						  .cancel_on_interrupt = true });
}

/* --watch: a migration started elsewhere, followed to its end. */
static int watch(struct migrate_opts *o)
{
	json_t *r;
	bool none;

	if (follow_call(o->control, "query-migrate", NULL, &r) < 0)
		return fail("%s", err_msg());
	none = !strcmp(json_string_value(json_object_get(r, "status")), "none");
	json_decref(r);
	if (none)
		return fail("no migration at %s to watch", o->control);
	return follow_migration(&(struct follow){ .control = o->control, .json = o->json });
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_opts o = { .args = json_object() };
	int rc = parse_args(argc, argv, &o);

	follow_catch_interrupts();
	if (rc == 0)
		rc = o.watch ? watch(&o) : migrate(&o);
	json_decref(o.args);
	return rc < 0 ? 0 : rc;
}

int cmd_migrate_set(int argc, char **argv)
{
	struct migrate_opts o = { .args = json_object() };
	json_t *r = NULL, *v;
	int rc;
	size_t i;

	cmd_name = "migrate-set";
	rc = parse_args(argc, argv, &o);
	if (rc == 0 && (o.watch || o.resume || o.json || json_object_get(o.args, "uri")))
		rc = usage_error(cmd_name, "it changes parameters: --to, --resume, --watch and "
					   "--json are ferry migrate's");
	if (rc == 0 && !json_object_size(o.args))
		rc = usage_error(cmd_name, "nothing to set: give a parameter, e.g. "
					   "--max-bandwidth 50M");
	if (rc == 0 && control_call(o.control, "migrate-set-parameters", o.args, &r) < 0)
		rc = fail("%s", err_msg());
	json_decref(o.args);
	if (rc)
		return rc < 0 ? 0 : rc;
	json_array_foreach(json_object_get(r, "applied"), i, v)
		printf("--%s: applied to the running migration\n", flag_of(json_string_value(v)));
	json_array_foreach(json_object_get(r, "next"), i, v)
		printf("--%s: set for the next migration\n", flag_of(json_string_value(v)));
	json_decref(r);
	return 0;
}

int cmd_migrate_cancel(int argc, char **argv)
{
	static const struct option longopts[] = { { "control", required_argument, NULL, 's' },
						  { "json", no_argument, NULL, 'j' },
						  { "help", no_argument, NULL, 'h' },
						  { 0 } };
	struct follow f = { .cancel_on_interrupt = true };
	json_t *ok;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 's')
			f.control = control_path(optarg);
		else if (opt == 'j')
			f.json = true;
		else if (opt == 'h')
			return fputs(migrate_cancel_help, stdout), 0;
		else
			return option_error("migrate-cancel", opt, argv);
	}
	if (optind < argc)
		return extra_args_error("migrate-cancel", argc, argv);
	if (!f.control)
		return usage_error("migrate-cancel", "--control NAME|PATH is required");
	follow_catch_interrupts();
	if (follow_call(f.control, "migrate-cancel", NULL, &ok) < 0)
		return fail("%s", err_msg());
	json_decref(ok);
	return follow_migration(&f);
}
