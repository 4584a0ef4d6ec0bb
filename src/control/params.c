/* Migration parameters from the control socket's JSON (ferry's names;
 * control/qmp.c knows QMP's): what migrate, migrate-set-parameters and
 * query-forecast take. */
#include <errno.h>
#include <string.h>

#include "control/commands.h"
#include "migration/send/converge.h"
#include "util/error.h"
#include "util/size.h"
#include "vm/throttle.h"

static int parse_pct(json_t *args, const char *key, uint32_t *out)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > THROTTLE_MAX_PCT)
		return err_set(-EINVAL, "%s must be a percentage from 1 to %u", key,
			       THROTTLE_MAX_PCT);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

/* A whole number in [min, max] at key, if present, into *out. */
static int parse_bounded(json_t *args, const char *key, uint64_t min, uint64_t max,
			 const char *unit, uint64_t *out)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    json_integer_value(v) > (json_int_t)max)
		return err_set(-EINVAL, "%s must be %llu to %llu %s", key, (unsigned long long)min,
			       (unsigned long long)max, unit);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* channels and compress. */
static int parse_pipeline(json_t *args, struct mig_params *p)
{
	json_t *v;

	if ((v = json_object_get(args, "channels"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > CHANNELS_MAX)
			return err_set(-EINVAL,
				       "channels must be a number of data channels from 0 to %u",
				       CHANNELS_MAX);
		p->channels = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(args, "compress"))) {
		if (!json_is_string(v))
			return err_set(-EINVAL,
				       "compress must be none, lz4, zstd, zstd:LEVEL or auto");
		if (mig_compress_parse(json_string_value(v), &p->compress) < 0)
			return -EINVAL;
	}
	return 0;
}

/* A string parameter that fits out (len bytes); absent leaves out be. */
static int parse_text(json_t *args, const char *key, char *out, size_t len)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= len)
		return err_set(-EINVAL, "%s must be a string of fewer than %zu bytes", key, len);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* TLS: the credentials' directory ("" for none), the destination's name. */
static int parse_tls(json_t *args, struct mig_params *p)
{
	if (parse_text(args, "tls-creds", p->tls_creds, sizeof(p->tls_creds)) < 0 ||
	    parse_text(args, "tls-hostname", p->tls_hostname, sizeof(p->tls_hostname)) < 0)
		return -EINVAL;
	if (p->tls_creds[0] && p->tls_creds[0] != '/')
		return err_set(-EINVAL, "tls-creds must be an absolute path");
	return 0;
}

const char *const control_param_keys[] = { "downtime-ms",
					   "max-bandwidth-bps",
					   "timeout-s",
					   "io-timeout-ms",
					   "verify",
					   "xbzrle-cache-bytes",
					   "converge",
					   "throttle-initial-pct",
					   "throttle-increment-pct",
					   "throttle-max-pct",
					   "channels",
					   "compress",
					   "postcopy",
					   "recover-timeout-s",
					   "local",
					   "tls-creds",
					   "tls-hostname",
					   NULL };

/* A byte count: a whole number, or text parse reads (100M, 1Gbit). */
static int parse_amount(json_t *args, const char *key, int (*parse)(const char *, uint64_t *),
			uint64_t *out, const char *what)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || parse(json_string_value(v), out) < 0)
		return err_set(-EINVAL, "%s must be %s", key, what);
	return 0;
}

static int parse_bool(json_t *args, const char *key, bool *out)
{
	json_t *v = json_object_get(args, key);

	if (v && !json_is_boolean(v))
		return err_set(-EINVAL, "%s must be true or false", key);
	if (v)
		*out = json_is_true(v);
	return 0;
}

int control_parse_params(json_t *args, struct mig_params *p)
{
	uint64_t io_timeout_ms = p->io_timeout_ms, recover_s = p->recover_timeout_s;
	json_t *v;

	if (!args)
		return 0;
	if (parse_pipeline(args, p) < 0)
		return -EINVAL;
	if (parse_bounded(args, "downtime-ms", 1, MIG_DOWNTIME_MS_MAX, "milliseconds",
			  &p->downtime_ms) < 0)
		return -EINVAL;
	if (parse_amount(args, "max-bandwidth-bps", rate_parse, &p->max_bandwidth_bps,
			 "bytes per second, a size per second like 100M, or bits like 1Gbit") < 0)
		return -EINVAL;
	if (parse_bounded(args, "timeout-s", 0, MIG_TIMEOUT_S_MAX, "seconds (0: none)",
			  &p->timeout_s) < 0 ||
	    parse_bounded(args, "io-timeout-ms", MIG_IO_TIMEOUT_MS_MIN, MIG_IO_TIMEOUT_MS_MAX,
			  "milliseconds", &io_timeout_ms) < 0)
		return -EINVAL;
	p->io_timeout_ms = (uint32_t)io_timeout_ms;
	if (parse_amount(args, "xbzrle-cache-bytes", size_parse, &p->xbzrle_cache_bytes,
			 "a size like 64M, or 0 for no XBZRLE") < 0)
		return -EINVAL;
	if ((v = json_object_get(args, "converge"))) {
		if (!json_is_string(v))
			return err_set(
				-EINVAL,
				"converge must be auto, throttle, sdps, dirty-limit or none");
		if (converge_parse(json_string_value(v), &p->converge) < 0)
			return -EINVAL;
	}
	if (parse_pct(args, "throttle-initial-pct", &p->throttle_initial) < 0 ||
	    parse_pct(args, "throttle-increment-pct", &p->throttle_increment) < 0 ||
	    parse_pct(args, "throttle-max-pct", &p->throttle_max) < 0)
		return -EINVAL;
	if (parse_bool(args, "verify", &p->verify) < 0 ||
	    parse_bool(args, "local", &p->local) < 0 ||
	    parse_bool(args, "postcopy", &p->postcopy) < 0)
		return -EINVAL;
	if (parse_bounded(args, "recover-timeout-s", 0, MIG_TIMEOUT_S_MAX, "seconds (0: no end)",
			  &recover_s) < 0)
		return -EINVAL;
	p->recover_timeout_s = (uint32_t)recover_s;
	return parse_tls(args, p);
}
