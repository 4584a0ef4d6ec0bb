/* Dirty-rate commands on the control socket: calc-dirty-rate starts a
 * measurement (migration/dirtyrate.h), query-dirty-rate reports it. */
#include <errno.h>

#include "control/commands.h"
#include "migration/plan/dirtyrate.h"
#include "util/error.h"
#include "util/page.h"
#include "vm/vm.h"

json_t *control_calc_dirty_rate(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);
	static const char *const keys[] = { "seconds", NULL };
	json_t *v = json_object_get(args, "seconds");
	json_int_t seconds = v ? json_integer_value(v) : 1;
	enum mig_status migration;
	enum vm_run_state state;

	if (!vm || control_only(args, "calc-dirty-rate", keys) < 0)
		return NULL;
	if (v && (!json_is_integer(v) || seconds < 1 || seconds > DIRTYRATE_MAX_SECONDS)) {
		err_set(-EINVAL, "seconds must be a whole number from 1 to %u",
			DIRTYRATE_MAX_SECONDS);
		return NULL;
	}
	if (dirtyrate_running(ctx->dirtyrate)) {
		err_set(-EBUSY, "a dirty-rate measurement is already running");
		return NULL;
	}
	migration = ctx_migration_status(ctx);
	if (migration != MIG_NONE && !mig_status_final(migration)) {
		err_set(-EBUSY,
			"a migration is running; query-migrate reports the dirty rate it measures");
		return NULL;
	}
	state = vm_get_status(vm).state;
	if (state != VM_RUNNING || migration == MIG_COMPLETED) {
		err_set(-EINVAL, "only a running guest dirties memory (this one is %s)",
			migration == MIG_COMPLETED ? "migrated away" : vm_state_name(state));
		return NULL;
	}
	dirtyrate_free(ctx->dirtyrate);
	ctx->dirtyrate = NULL;
	if (dirtyrate_start(vm, (unsigned)seconds, &ctx->dirtyrate) < 0)
		return NULL;
	return json_object();
}

static const char *status_name(enum dirtyrate_status s)
{
	static const char *const names[] = { "none", "measuring", "measured", "failed" };

	return names[s];
}

/* {"lz4": {"ratio", "mbps"}, "zstd": ...}: what each did with the samples. */
static json_t *codecs_json(const struct dirtyrate_result *r)
{
	json_t *o = json_object();

	for (int k = COMPRESS_LZ4; k < COMPRESS_KINDS; k++)
		if (r->codec_bps[k] > 0)
			json_object_set_new(o, compress_kind_name((enum compress_kind)k),
					    json_pack("{s:f,s:f}", "ratio", r->codec_ratio[k],
						      "mbps", r->codec_bps[k] / 1e6));
	return o;
}

json_t *control_query_dirty_rate(struct control_ctx *ctx, json_t *args)
{
	struct dirtyrate_result r;
	json_t *o, *per_vcpu, *busy;

	(void)args;
	if (!ctx->dirtyrate)
		return json_pack("{s:s}", "status", "none");
	r = dirtyrate_get(ctx->dirtyrate);
	o = json_pack("{s:s,s:f,s:f}", "status", status_name(r.status), "seconds", r.seconds,
		      "elapsed_s", r.elapsed_s);
	if (r.status == DIRTYRATE_FAILED)
		json_object_set_new(o, "reason", json_string(r.reason));
	if (r.status != DIRTYRATE_MEASURED)
		return o;
	json_object_update_new(
		o, json_pack("{s:I,s:I,s:I,s:f,s:f,s:f,s:i}", "mem_pages", (json_int_t)r.mem_pages,
			     "zero_pages", (json_int_t)r.zero_pages, "working_set_pages",
			     (json_int_t)r.working_set_pages, "dirty_rate_pps", r.rate_pps,
			     "peak_rate_pps", r.peak_pps, "dirty_rate_mibps",
			     r.rate_pps * FERRY_PAGE_SIZE / 1048576.0, "vcpus", (int)r.nr_vcpus));
	json_object_update_new(o, json_pack("{s:f,s:f}", "dirty_rate_p10_pps", r.rate_p10_pps,
					    "dirty_rate_p90_pps", r.rate_p90_pps));
	/* What the switchover and the copy cost on this host. */
	json_object_update_new(o, json_pack("{s:f,s:f,s:i,s:f,s:f}", "copy_mbps", r.copy_bps / 1e6,
					    "copy_parallel_mbps", r.copy_parallel_bps / 1e6,
					    "copy_parallel_senders", (int)r.copy_parallel_senders,
					    "verify_ms", r.verify_ms, "sync_ms", r.sync_ms));
	json_object_set_new(o, "codecs", codecs_json(&r));
	busy = json_array();
	for (unsigned i = 0; i < r.nr_vcpus; i++)
		json_array_append_new(busy, json_real(r.vcpu_busy[i]));
	json_object_set_new(o, "vcpu_busy", busy);
	if (r.per_vcpu) {
		per_vcpu = json_array();
		for (unsigned i = 0; i < r.nr_vcpus; i++)
			json_array_append_new(per_vcpu, json_real(r.vcpu_pps[i]));
		json_object_set_new(o, "vcpu_rate_pps", per_vcpu);
	}
	if (r.xbzrle_samples)
		json_object_update_new(o, json_pack("{s:i,s:f,s:f}", "xbzrle_samples",
						    (int)r.xbzrle_samples, "xbzrle_bytes_per_page",
						    r.xbzrle_bytes_per_page, "line_bytes_per_page",
						    r.line_bytes_per_page));
	return o;
}
