/* Migration commands on the control socket: migrate, migrate-set-parameters,
 * query-migrate, migrate-cancel; and the JSON report of a migration. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "control/commands.h"
#include "migration/send/converge.h"
#include "migration/plan/dirtyrate.h"
#include "migration/send/source.h"
#include "transport/chan.h"
#include "util/error.h"
#include "util/page.h"
#include "util/size.h"
#include "vm/throttle.h"
#include "vm/vm.h"

static bool migration_running(struct control_ctx *ctx)
{
	enum mig_status s = ctx_migration_status(ctx);

	return s != MIG_NONE && !mig_status_final(s);
}

json_t *control_id_json(uint64_t id)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
	return json_string(hex);
}

/* migrate with "resume": a broken post-copy goes on at uri. */
static json_t *resume(struct control_ctx *ctx, json_t *args, const char *uri)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) if (strcmp(key, "uri") && strcmp(key, "resume"))
	{
		err_set(-EINVAL,
			"migrate with resume takes only uri, not '%s': the migration "
			"goes on as it was asked",
			key);
		return NULL;
	}
	if (!uri) {
		err_set(-EINVAL, "migrate with resume needs the \"uri\" where the destination's "
				 "migrate-recover listens");
		return NULL;
	}
	if (chan_check_uri(uri) < 0)
		return NULL;
	if (!strncmp(uri, "fd:", 3)) {
		err_set(-EINVAL, "resuming needs a tcp: or unix: URI; %s is one connection", uri);
		return NULL;
	}
	if (!ctx->migration) {
		err_set(-EINVAL, "no migration to resume here");
		return NULL;
	}
	return mig_source_resume(ctx->migration, uri) < 0 ? NULL : json_object();
}

/* A local migration hands the memory over on a unix socket: it needs
 * memory another process can map, and takes no argument about pages. */
static int check_local(const struct vm *vm, json_t *args, const char *uri, struct mig_params *p)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v)
	{
		if (!mig_local_takes(key))
			return err_set(-EINVAL,
				       "a local migration %s, so '%s' does not apply (it takes "
				       "verify, timeout-s and io-timeout-ms)",
				       mig_local_why_not(key), key);
	}
	if (!chan_uri_is_unix(uri))
		return err_set(-EINVAL,
			       "a local migration hands the memory over on a unix socket "
			       "(unix:PATH); %s is not one",
			       uri);
	if (vm->mem.memfd < 0)
		return err_set(-EINVAL,
			       "guest memory is %s, which another process cannot map: start the VM "
			       "with --mem-backend memfd or hugetlb to migrate it locally",
			       mem_backend_name(vm->mem.backend));
	/* Defaults for copying migrations (migrate-set-parameters) stay out. */
	p->channels = 0;
	p->compress = (struct mig_compress){ .level = 1 };
	p->xbzrle_cache_bytes = 0;
	p->postcopy = false;
	p->max_bandwidth_bps = 0;
	return 0;
}

static json_t *start_migration(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);
	struct mig_params p = ctx->params;
	const char *uri = json_string_value(json_object_get(args, "uri"));
	struct mig_source *m;
	json_t *r = json_object_get(args, "resume"), *forecast;

	if (r && !json_is_boolean(r)) {
		err_set(-EINVAL, "resume must be true or false");
		return NULL;
	}
	if (json_is_true(r))
		return resume(ctx, args, uri);
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
	if (ctx_migration_status(ctx) == MIG_COMPLETED) {
		err_set(-EINVAL, "this guest has already migrated away");
		return NULL;
	}
	if (ctx_migration_status(ctx) == MIG_UNKNOWN) {
		err_set(-EINVAL,
			"the last migration's outcome is unknown: settle it first (ferry migrate-resolve)");
		return NULL;
	}
	if (dirtyrate_running(ctx->dirtyrate)) {
		err_set(-EBUSY, "a dirty-rate measurement is running; migrate when it ends");
		return NULL;
	}
	if (vm_get_status(vm).state != VM_RUNNING) {
		err_set(-EINVAL, "the VM is %s; only a running VM migrates",
			vm_state_name(vm_get_status(vm).state));
		return NULL;
	}
	if (control_parse_params(args, &p) < 0 || chan_check_uri(uri) < 0 ||
	    (p.local ? check_local(vm, args, uri, &p) : converge_check(vm, &p)) < 0)
		return NULL;
	if ((p.channels || p.postcopy) && !strncmp(uri, "fd:", 3)) {
		err_set(-EINVAL, "%s need a tcp: or unix: URI; %s is one connection",
			p.channels ? "data channels" : "post-copy's urgent pages", uri);
		return NULL;
	}
	forecast = control_migration_forecast(ctx, &p);
	if (ctx_stopping(ctx) || mig_source_start(vm, uri, &p, &m) < 0) {
		if (ctx_stopping(ctx))
			err_set(-ESHUTDOWN, "this ferry is stopping");
		json_decref(forecast);
		return NULL;
	}
	pthread_mutex_lock(&ctx->lock);
	mig_source_free(ctx->migration); /* finished: its thread has ended */
	ctx->migration = m;
	pthread_mutex_unlock(&ctx->lock);
	json_decref(ctx->forecast);
	ctx->forecast = forecast;
	return json_object();
}

/* migrate: QMP's "detach" is taken and ignored, as QEMU does. */
static const char *const migrate_keys[] = { "uri", "resume", "detach", NULL };

json_t *control_migrate(struct control_ctx *ctx, json_t *asked)
{
	json_t *args = asked ? qmp_params_in(asked, control_param_keys, migrate_keys) : NULL, *r;

	if (asked && !args)
		return NULL;
	json_object_del(args, "detach");
	r = start_migration(ctx, args);
	json_decref(args);
	return r;
}

/* The parameters ferry uses now: by ferry's names, and by QMP's too. */
json_t *control_query_migrate_parameters(struct control_ctx *ctx, json_t *args)
{
	const struct mig_params *p = &ctx->params;
	json_t *r;
	char codec[32];
	const char *key;
	json_t *v;

	(void)args;
	r = json_pack("{s:I,s:I,s:I,s:i,s:b,s:I,s:s,s:i,s:i,s:i,s:i,s:s,s:b,s:i,s:b,s:s,s:s}",
		      "downtime-ms", (json_int_t)p->downtime_ms, "max-bandwidth-bps",
		      (json_int_t)p->max_bandwidth_bps, "timeout-s", (json_int_t)p->timeout_s,
		      "io-timeout-ms", (int)p->io_timeout_ms, "verify", p->verify,
		      "xbzrle-cache-bytes", (json_int_t)p->xbzrle_cache_bytes, "converge",
		      converge_name(p->converge), "throttle-initial-pct", (int)p->throttle_initial,
		      "throttle-increment-pct", (int)p->throttle_increment, "throttle-max-pct",
		      (int)p->throttle_max, "channels", (int)p->channels, "compress",
		      mig_compress_name(&p->compress, codec, sizeof(codec)), "postcopy",
		      p->postcopy, "recover-timeout-s", (int)p->recover_timeout_s, "local",
		      p->local, "tls-creds", p->tls_creds, "tls-hostname", p->tls_hostname);
	json_object_foreach(r, key, v) if (qmp_param_name(key))
		json_object_set(r, qmp_param_name(key), v);
	return r;
}

/* What a running migration takes from migrate-set-parameters
 * (mig_source_set_params); the rest waits for the next migrate. */
static bool applies_now(const char *key)
{
	return !strcmp(key, "max-bandwidth-bps") || !strcmp(key, "downtime-ms") ||
	       !strcmp(key, "timeout-s");
}

json_t *control_migrate_set_parameters(struct control_ctx *ctx, json_t *asked)
{
	json_t *args = asked ? qmp_params_in(asked, control_param_keys, NULL) : NULL, *v;
	json_t *r = json_pack("{s:[],s:[]}", "applied", "next");
	struct mig_params p = ctx->params;
	int rc = asked && !args ? -EINVAL : control_parse_params(args, &p);
	bool running = migration_running(ctx);
	const char *key;

	if (rc == 0) {
		ctx->params = p;
		if (running)
			mig_source_set_params(ctx->migration, &ctx->params);
		json_object_foreach(args, key, v) json_array_append_new(
			json_object_get(r, running && applies_now(key) ? "applied" : "next"),
			json_string(key));
	}
	json_decref(args);
	if (rc < 0)
		json_decref(r);
	return rc < 0 ? NULL : r;
}

json_t *control_migrate_start_postcopy(struct control_ctx *ctx, json_t *args)
{
	(void)args;
	if (!migration_running(ctx)) {
		err_set(-EINVAL, "no migration is running");
		return NULL;
	}
	return mig_source_start_postcopy(ctx->migration) < 0 ? NULL : json_object();
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

static json_t *xbzrle_json(const struct mig_stats *s)
{
	const struct xbzrle_stats *x = &s->xbzrle;
	double secs = (double)x->encode_ns / 1e9;
	double pages = (double)(x->hits + x->misses);

	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "cache_bytes",
			 (json_int_t)x->cache_bytes, "digest_bytes", (json_int_t)x->digest_bytes,
			 "line_pages", (json_int_t)x->line_pages, "seeded", (json_int_t)x->seeded,
			 "pages", (json_int_t)x->pages, "cache_hits", (json_int_t)x->hits,
			 "cache_misses", (json_int_t)x->misses, "overflows",
			 (json_int_t)x->overflows, "bytes_saved", (json_int_t)x->bytes_saved,
			 "hit_rate", pages ? (double)x->hits / pages : 0.0, "encode_mbps",
			 secs > 0 ? pages * FERRY_PAGE_SIZE / secs / 1e6 : 0.0);
}

static json_t *converge_json(const struct converge_stats *c)
{
	json_t *log = json_array(), *per_vcpu = json_array();
	uint32_t first = c->decisions > CONVERGE_LOG ? c->decisions - CONVERGE_LOG : 0;

	for (uint32_t i = first; i < c->decisions; i++)
		json_array_append_new(log, json_pack("{s:i,s:s}", "round",
						     (int)c->log[i % CONVERGE_LOG].round,
						     "decision", c->log[i % CONVERGE_LOG].text));
	for (unsigned i = 0; i < c->nr_vcpus; i++)
		json_array_append_new(per_vcpu, json_integer(c->vcpu_pct_max[i]));
	return json_pack("{s:s,s:s,s:i,s:i,s:o,s:i,s:o}", "strategy", converge_name(c->asked),
			 "used", converge_name(c->active), "throttle_pct_max",
			 (int)c->throttle_pct_max, "throttle_pct", (int)c->throttle_pct_now,
			 "vcpu_throttle_pct_max", per_vcpu, "decisions_total", (int)c->decisions,
			 "decisions", log);
}

static json_t *channel_json(const struct channel_stats *c, const struct rec_received_chan *r,
			    uint32_t index)
{
	return json_pack("{s:i,s:I,s:I,s:f,s:I,s:I,s:I,s:f,s:f,s:I,s:f,s:I}", "index", (int)index,
			 "bytes", (json_int_t)c->bytes, "raw_bytes", (json_int_t)c->raw_bytes,
			 "ratio", c->bytes ? (double)c->raw_bytes / (double)c->bytes : 0.0,
			 "batches", (json_int_t)c->batches, "compressed", (json_int_t)c->compressed,
			 "skipped", (json_int_t)c->skipped, "compress_cpu_ms",
			 (double)c->compress_cpu_ns / 1e6, "wait_ms", (double)c->wait_ns / 1e6,
			 "dest_bytes", (json_int_t)r->bytes, "decompress_cpu_ms",
			 (double)r->decompress_ns / 1e6, "barrier_waits",
			 (json_int_t)r->barrier_waits);
}

/* The codec over time: each change with the link and ratio it was made on. */
static json_t *codec_json(const struct mig_compress *asked, const struct codec_report *c)
{
	json_t *log = json_array();
	char name[32], plan[32];

	for (uint32_t i = 0; asked->automatic && i < c->changes && i < CODEC_LOG; i++)
		json_array_append_new(
			log, json_pack("{s:f,s:s,s:f,s:f}", "t_ms", c->log[i].t_ms, "codec",
				       codec_plan_name(&c->log[i].plan, plan, sizeof(plan)),
				       "link_mbps", c->log[i].link_mbps, "ratio", c->log[i].ratio));
	return json_pack("{s:s,s:s,s:i,s:o}", "asked", mig_compress_name(asked, name, 32), "now",
			 codec_plan_name(&c->now, plan, sizeof(plan)), "changes",
			 (int)(asked->automatic ? c->changes : 0), "log", log);
}

/* Post-copy: the source's count and the destination's (PLACED; zero until
 * it came). */
static json_t *postcopy_json(const struct postcopy_report *p)
{
	json_t *r =
		json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "ms", p->ms, "pending_pages",
			  (json_int_t)p->pending, "requests", (json_int_t)p->requests,
			  "requested_pages", (json_int_t)p->requested_pages, "faults",
			  (json_int_t)p->placed.faults, "pages_asked", (json_int_t)p->placed.asked,
			  "pages_pushed", (json_int_t)p->placed.pushed, "fault_wait_p50_ms",
			  (double)p->placed.wait_p50_ns / 1e6, "fault_wait_p99_ms",
			  (double)p->placed.wait_p99_ns / 1e6, "fault_wait_max_ms",
			  (double)p->placed.wait_max_ns / 1e6);

	json_t *blocked = json_array(), *hist = json_array();

	for (unsigned k = 0; k < 32; k++)
		if (p->placed.wait_hist[k])
			json_array_append_new(hist, json_pack("{s:I,s:I}", "below_us",
							      (json_int_t)1 << k, "count",
							      (json_int_t)p->placed.wait_hist[k]));
	json_object_set_new(r, "fault_wait_hist", hist);
	json_object_set_new(r, "forget_ahead_ms", json_real(p->forget_ms));
	for (uint32_t v = 0; v < p->placed.vcpus && v < PLACED_MAX_VCPUS; v++)
		json_array_append_new(blocked, json_real((double)p->placed.blocked_ns[v] / 1e6));
	json_object_set_new(r, "vcpu_blocked_ms", blocked);
	json_object_set_new(r, "recoveries", json_integer(p->recoveries));
	if (p->recoveries)
		json_object_set_new(r, "recover_ms", json_real(p->recover_ms));
	return r;
}

static json_t *pipeline_json(const struct mig_stats *s)
{
	json_t *chans = json_array();

	for (uint32_t i = 0; i < (s->channels ? s->channels : 1); i++)
		json_array_append_new(chans, channel_json(&s->chan[i], &s->received[i], i));
	return json_pack("{s:i,s:o,s:o}", "data_channels", (int)s->channels, "channels", chans,
			 "compress", codec_json(&s->compress, &s->codec));
}

/* What QMP's query-migrate says, under its names: whole ms, and "ram". */
static void qmp_fields(struct control_ctx *ctx, const struct mig_stats *s, json_t *r)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	json_t *ram =
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:f,s:i}", "transferred",
			  (json_int_t)s->bytes_sent, "remaining",
			  (json_int_t)(s->remaining_pages * FERRY_PAGE_SIZE), "total",
			  (json_int_t)(vm ? vm->mem.size : 0), "duplicate",
			  (json_int_t)s->pages_zero, "normal", (json_int_t)s->pages_raw,
			  "normal-bytes", (json_int_t)(s->pages_raw * FERRY_PAGE_SIZE), "mbps",
			  s->bandwidth_bps * 8 / 1e6, "dirty-sync-count", (json_int_t)s->rounds,
			  "dirty-pages-rate", s->dirty_rate_pps, "page-size", FERRY_PAGE_SIZE);

	json_object_set_new(r, "ram", ram);
	json_object_set_new(r, "total-time", json_integer((json_int_t)s->total_ms));
	json_object_set_new(r, "setup-time", json_integer((json_int_t)s->setup_ms));
	json_object_set_new(
		r, mig_status_final(s->status) ? "downtime" : "expected-downtime",
		json_integer((json_int_t)(mig_status_final(s->status) ? s->downtime_ms
								      : s->expected_downtime_ms)));
}

json_t *control_query_migrate(struct control_ctx *ctx, json_t *args)
{
	struct mig_stats s;
	json_t *r;

	(void)args;
	if (!ctx->migration)
		return json_pack("{s:s}", "status", "none");
	s = mig_source_stats(ctx->migration);
	r = json_pack("{s:s,s:s,s:f,s:f,s:f,s:i,s:I,s:{s:I,s:I,s:I},s:f,s:s,s:I,s:f,s:f,s:o}",
		      "status", mig_status_name(s.status), "uri", s.uri, "total_ms", s.total_ms,
		      "downtime_ms", s.downtime_ms, "setup_ms", s.setup_ms, "rounds", (int)s.rounds,
		      "bytes_sent", (json_int_t)s.bytes_sent, "pages", "raw",
		      (json_int_t)s.pages_raw, "zero", (json_int_t)s.pages_zero, "xbzrle",
		      (json_int_t)s.pages_xbzrle, "bandwidth_bps", s.bandwidth_bps, "verify",
		      s.verify, "remaining_pages", (json_int_t)s.remaining_pages, "dirty_rate_pps",
		      s.dirty_rate_pps, "expected_downtime_ms", s.expected_downtime_ms, "phases",
		      phases_json(&s.phase));
	json_object_set_new(r, "id", control_id_json(s.id));
	qmp_fields(ctx, &s, r);
	json_object_set_new(r, "local", json_boolean(s.local));
	json_object_set_new(r, "converge", converge_json(&s.converge));
	json_object_set_new(r, "round_log", control_round_log_json(s.round_log, s.rounds));
	if (ctx->forecast)
		json_object_set(r, "forecast", ctx->forecast);
	json_object_set_new(r, "pipeline", pipeline_json(&s));
	if (s.xbzrle.cache_bytes)
		json_object_set_new(r, "xbzrle", xbzrle_json(&s));
	if (s.postcopy.used)
		json_object_set_new(r, "postcopy", postcopy_json(&s.postcopy));
	if (s.reason[0])
		json_object_set_new(r, "reason", json_string(s.reason));
	return r;
}
