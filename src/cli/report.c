/* The report of a migration, for people: what ferry migrate, --watch,
 * migrate-cancel and ferry upgrade print at the end. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/size.h"

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
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

/* The forecast made when the migration started, beside what happened. */
static void report_forecast(json_t *f, json_t *s)
{
	json_t *total = json_object_get(f, "total_ms_range"), *hi = json_array_get(total, 1);
	char upper[32] = "?";

	if (!f)
		return;
	if (json_object_get(f, "reason") && !json_object_get(f, "total_ms")) {
		printf("  forecast  none: %s\n", json_string_value(json_object_get(f, "reason")));
		return;
	}
	if (!json_is_true(json_object_get(f, "converges"))) {
		printf("  forecast  would not converge: %s\n",
		       json_string_value(json_object_get(f, "reason")));
		return;
	}
	if (json_is_number(hi))
		snprintf(upper, sizeof(upper), "%.0f", json_number_value(hi));
	printf("  forecast  %.0f ms (%.0f-%s), downtime %.1f ms, %.0f rounds; it took %.0f ms (%+.0f%%), from a measurement %.0f s before\n",
	       num(f, "total_ms"), json_number_value(json_array_get(total, 0)), upper,
	       num(f, "downtime_ms"), num(f, "rounds"), num(s, "total_ms"),
	       100 * (num(s, "total_ms") / num(f, "total_ms") - 1), num(f, "measured_s_ago"));
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
	report_forecast(json_object_get(s, "forecast"), s);
	printf("  verify    %s\n", json_string_value(json_object_get(s, "verify")));
}
