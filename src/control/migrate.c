/* Migration commands on the control socket: migrate, migrate-set-parameters,
 * query-migrate, migrate-cancel; and the JSON report of a migration. */
#include <errno.h>
#include <string.h>

#include "control/commands.h"
#include "migration/source.h"
#include "util/error.h"
#include "util/size.h"
#include "vm/vm.h"

/* Read the parameters present in args over p. */
static int parse_params(json_t *args, struct mig_params *p)
{
	json_t *v;

	if (!args)
		return 0;
	if ((v = json_object_get(args, "downtime-ms"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return err_set(-EINVAL,
				       "downtime-ms must be a positive number of milliseconds");
		p->downtime_ms = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(args, "max-bandwidth"))) {
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			p->max_bandwidth_bps = (uint64_t)json_integer_value(v);
		else if (!json_is_string(v) ||
			 rate_parse(json_string_value(v), &p->max_bandwidth_bps) < 0)
			return err_set(
				-EINVAL,
				"max-bandwidth must be bytes per second, a size per second like 100M, or bits like 1Gbit");
	}
	if ((v = json_object_get(args, "timeout"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return err_set(-EINVAL, "timeout must be seconds (0: none)");
		p->timeout_s = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(args, "io-timeout-ms"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 100)
			return err_set(-EINVAL, "io-timeout-ms must be at least 100");
		p->io_timeout_ms = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(args, "verify"))) {
		if (!json_is_boolean(v))
			return err_set(-EINVAL, "verify must be true or false");
		p->verify = json_is_true(v);
	}
	return 0;
}

static bool migration_running(struct control_ctx *ctx)
{
	return ctx->migration && !mig_status_final(mig_source_stats(ctx->migration).status);
}

json_t *control_migrate(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);
	struct mig_params p = ctx->params;
	const char *uri = json_string_value(json_object_get(args, "uri"));

	if (!vm)
		return NULL;
	if (!uri) {
		err_set(-EINVAL, "migrate needs a \"uri\": tcp:HOST:PORT, unix:PATH or fd:N");
		return NULL;
	}
	if (migration_running(ctx)) {
		err_set(-EBUSY, "a migration is already running; cancel it first");
		return NULL;
	}
	if (ctx_migrated(ctx)) {
		err_set(-EINVAL, "this guest has already migrated away");
		return NULL;
	}
	if (vm->state != VM_RUNNING) {
		err_set(-EINVAL, "the VM is %s; only a running VM migrates",
			vm_state_name(vm->state));
		return NULL;
	}
	if (parse_params(args, &p) < 0)
		return NULL;
	mig_source_free(ctx->migration);
	ctx->migration = NULL;
	if (mig_source_start(vm, uri, &p, &ctx->migration) < 0)
		return NULL;
	return json_object();
}

json_t *control_migrate_set_parameters(struct control_ctx *ctx, json_t *args)
{
	if (parse_params(args, &ctx->params) < 0)
		return NULL;
	if (migration_running(ctx))
		mig_source_set_params(ctx->migration, &ctx->params);
	return json_object();
}

json_t *control_migrate_cancel(struct control_ctx *ctx, json_t *args)
{
	(void)args;
	if (!migration_running(ctx)) {
		err_set(-EINVAL, "no migration is running");
		return NULL;
	}
	mig_source_cancel(ctx->migration);
	return json_object();
}

static json_t *phases_json(const struct mig_phases *ph)
{
	return json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "pause_ms", ph->pause, "final_sync_ms",
			 ph->final_sync, "final_pages_ms", ph->final_pages, "state_ms", ph->state,
			 "verify_ms", ph->verify, "handoff_ms", ph->handoff, "resume_ms",
			 ph->resume);
}

json_t *control_query_migrate(struct control_ctx *ctx, json_t *args)
{
	struct mig_stats s;
	json_t *r;

	(void)args;
	if (!ctx->migration)
		return json_pack("{s:s}", "status", "none");
	s = mig_source_stats(ctx->migration);
	r = json_pack("{s:s,s:s,s:f,s:f,s:f,s:i,s:I,s:{s:I,s:I},s:f,s:s,s:I,s:f,s:f,s:o}", "status",
		      mig_status_name(s.status), "uri", s.uri, "total_ms", s.total_ms,
		      "downtime_ms", s.downtime_ms, "setup_ms", s.setup_ms, "rounds", (int)s.rounds,
		      "bytes_sent", (json_int_t)s.bytes_sent, "pages", "raw",
		      (json_int_t)s.pages_raw, "zero", (json_int_t)s.pages_zero, "bandwidth_bps",
		      s.bandwidth_bps, "verify", s.verify, "remaining_pages",
		      (json_int_t)s.remaining_pages, "dirty_rate_pps", s.dirty_rate_pps,
		      "expected_downtime_ms", s.expected_downtime_ms, "phases",
		      phases_json(&s.phase));
	if (s.reason[0])
		json_object_set_new(r, "reason", json_string(s.reason));
	return r;
}
