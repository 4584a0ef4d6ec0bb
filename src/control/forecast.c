/* Forecasts on the control socket (migration/plan/predict.h).
 * query-forecast replays a migration of the guest as its last dirty-rate
 * measurement found it, over a link the client names, with each strategy
 * (ferry predict prints it). migrate makes one with its own parameters,
 * which query-migrate sets beside what happened: every migration that had
 * a recent measurement calibrates the model. */
#include <errno.h>
#include <string.h>

#include "control/commands.h"
#include "migration/plan/dirtyrate.h"
#include "migration/plan/predict.h"
#include "migration/send/converge.h"
#include "util/error.h"
#include "util/time.h"

#define DEFAULT_XBZRLE (64ull << 20)

json_t *control_round_log_json(const struct round_record *log, uint32_t rounds)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < rounds && i < MIG_ROUND_LOG; i++)
		json_array_append_new(a, json_pack("{s:i,s:I,s:I,s:f,s:i}", "round", (int)i,
						   "pages", (json_int_t)log[i].pages, "dirtied",
						   (json_int_t)log[i].dirtied, "ms", log[i].ms,
						   "throttle_pct", (int)log[i].throttle_pct));
	return a;
}

/* One forecast: the point, its range, the throttle and the rounds. */
static json_t *forecast_json(const struct predict_input *in, const char *label)
{
	struct prediction p;
	struct predict_range range;
	json_t *pct = json_array(), *f;

	predict(in, &p);
	predict_range(in, &p, &range);
	for (unsigned i = 0; i < in->m.nr_vcpus; i++)
		json_array_append_new(pct, json_integer(p.pct[i]));
	f = json_pack("{s:s,s:s,s:s,s:b,s:f,s:f,s:i,s:i,s:o,s:s,s:o}", "name", label, "strategy",
		      converge_name(in->params.converge), "codec", compress_kind_name(p.codec),
		      "converges", p.converges, "total_ms", p.total_ms, "downtime_ms",
		      p.downtime_ms, "rounds", (int)p.rounds, "throttle_pct_max", (int)p.pct_max,
		      "throttle_pct", pct, "reason", p.why, "round_log",
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

static json_t *row(const struct predict_input *base, enum converge_strategy s, uint64_t xbzrle,
		   const char *label)
{
	struct predict_input in = *base;

	in.params.converge = s;
	in.params.xbzrle_cache_bytes = xbzrle;
	return forecast_json(&in, label);
}

/* The last measurement, if one ended; else NULL with the reason. */
static const struct dirtyrate_result *measured(struct control_ctx *ctx, struct dirtyrate_result *r)
{
	if (!ctx->dirtyrate || (*r = dirtyrate_get(ctx->dirtyrate)).status == DIRTYRATE_NONE) {
		err_set(-ENOENT, "no dirty-rate measurement yet: run calc-dirty-rate (ferry "
				 "predict does) first");
		return NULL;
	}
	if (r->status != DIRTYRATE_MEASURED) {
		err_set(-EAGAIN, "the dirty-rate measurement %s",
			r->status == DIRTYRATE_MEASURING ? "is still running" : "failed");
		return NULL;
	}
	return r;
}

/* The vCPUs whose shares of the rate the forecast cannot tell apart: all of
 * them with the bitmap, which counts pages and not who wrote them (each gets
 * an even share); none with the dirty ring. */
static json_t *vcpus_alike(const struct dirtyrate_result *r)
{
	json_t *a = json_array();

	for (unsigned i = 0; !r->per_vcpu && i < r->nr_vcpus; i++)
		json_array_append_new(a, json_integer(i));
	return a;
}

/* link-bps: 0 if absent, -1 (with the sentence) if not bytes per second. */
static json_int_t link_of(json_t *args)
{
	json_t *v = json_object_get(args, "link-bps");

	if (v && (!json_is_integer(v) || json_integer_value(v) < 1))
		return err_set(-EINVAL, "link-bps must be a whole number of bytes per second");
	return v ? json_integer_value(v) : 0;
}

json_t *control_query_forecast(struct control_ctx *ctx, json_t *asked)
{
	static const char *const keys[] = { "link-bps", NULL };
	json_t *args = qmp_params_in(asked, control_param_keys, keys), *rows;
	json_int_t link = args ? link_of(args) : -1;
	struct dirtyrate_result r;
	struct predict_input in;
	struct mig_params p;
	uint64_t xbzrle;

	mig_params_default(&p);
	if (link == 0)
		err_set(-EINVAL, "query-forecast needs \"link-bps\": the link's bytes per second");
	if (link <= 0 || control_parse_params(args, &p) < 0 || !measured(ctx, &r)) {
		json_decref(args);
		return NULL;
	}
	json_decref(args);
	xbzrle = p.xbzrle_cache_bytes ? p.xbzrle_cache_bytes : DEFAULT_XBZRLE;
	in = (struct predict_input){ .m = r, .link_bps = (double)link, .params = p };
	rows = json_array();
	json_array_append_new(rows, row(&in, CONVERGE_NONE, 0, "none"));
	json_array_append_new(rows, row(&in, CONVERGE_NONE, xbzrle, "xbzrle"));
	json_array_append_new(rows, row(&in, CONVERGE_THROTTLE, 0, "throttle"));
	json_array_append_new(rows, row(&in, CONVERGE_SDPS, 0, "sdps"));
	if (in.m.per_vcpu)
		json_array_append_new(rows, row(&in, CONVERGE_DIRTY_LIMIT, 0, "dirty-limit"));
	json_array_append_new(rows, row(&in, CONVERGE_AUTO, 0, "auto"));
	ctx->forecast_link_bps = (double)link;
	return json_pack("{s:o,s:I,s:I,s:o,s:o}", "measured", control_query_dirty_rate(ctx, NULL),
			 "link_bps", link, "downtime_ms", (json_int_t)p.downtime_ms, "vcpus_alike",
			 vcpus_alike(&r), "predictions", rows);
}

json_t *control_migration_forecast(struct control_ctx *ctx, const struct mig_params *p)
{
	double link = ctx->forecast_link_bps, cap = (double)p->max_bandwidth_bps;
	struct dirtyrate_result r;
	struct predict_input in;
	double age;
	json_t *f;

	if (p->local)
		return json_pack("{s:s}", "reason", "a local migration sends no pages");
	if (!measured(ctx, &r))
		return json_pack("{s:s}", "reason", err_msg());
	if (cap > 0 && (link <= 0 || cap < link))
		link = cap; /* the slower of the link and the cap */
	age = (double)(time_now_ns() - r.ended_ns) / 1e9;
	if (age > CONTROL_FORECAST_MAX_AGE_S)
		return json_pack("{s:s}", "reason",
				 "the last dirty-rate measurement is more than "
				 "10 minutes old: run ferry predict again");
	if (link <= 0)
		return json_pack("{s:s}", "reason",
				 "no link rate: run ferry predict --link RATE "
				 "first, or set max-bandwidth");
	in = (struct predict_input){ .m = r, .link_bps = link, .params = *p };
	f = forecast_json(&in, "migration");
	json_object_update_new(f, json_pack("{s:f,s:f}", "link_bps", link, "measured_s_ago", age));
	return f;
}
