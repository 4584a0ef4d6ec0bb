#include "migration/migration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

void mig_params_default(struct mig_params *p)
{
	*p = (struct mig_params){ .downtime_ms = 300,
				  .timeout_s = 600,
				  .io_timeout_ms = 10000,
				  .converge = CONVERGE_AUTO,
				  .throttle_initial = 20,
				  .throttle_increment = 10,
				  .throttle_max = 99,
				  .compress = { .level = 1 },
				  .recover_timeout_s = MIG_RECOVER_S_DEFAULT };
}

bool mig_local_takes(const char *key)
{
	static const char *const takes[] = { "uri", "local", "verify", "timeout-s",
					     "io-timeout-ms" };

	for (size_t i = 0; i < sizeof(takes) / sizeof(takes[0]); i++)
		if (!strcmp(key, takes[i]))
			return true;
	return false;
}

const char *mig_local_why_not(const char *key)
{
	return strncmp(key, "tls-", 4) ? "sends no page"
				       : "never leaves this host (and a memory's fd cannot go "
					 "inside TLS)";
}

const char *mig_status_name(enum mig_status s)
{
	static const char *const names[] = { "none",
					     "setup",
					     "active",
					     "switchover",
					     "postcopy-active",
					     "postcopy-paused",
					     "postcopy-recover",
					     "completed",
					     "failed",
					     "cancelled",
					     "unknown",
					     "lost" };

	return names[s];
}

bool mig_status_final(enum mig_status s)
{
	return s >= MIG_COMPLETED;
}

int mig_compress_parse(const char *spec, struct mig_compress *out)
{
	*out = (struct mig_compress){ .level = 1 };
	if (!strcmp(spec, "auto")) {
		out->automatic = true;
		return 0;
	}
	if (compress_parse(spec, &out->kind, &out->level) < 0)
		return err_set(
			-EINVAL,
			"compression '%s' is unknown: use none, lz4, zstd, zstd:LEVEL (1-19) or auto",
			spec);
	return 0;
}

const char *mig_compress_name(const struct mig_compress *c, char *buf, size_t len)
{
	if (c->automatic)
		snprintf(buf, len, "auto");
	else if (c->kind == COMPRESS_ZSTD)
		snprintf(buf, len, "zstd:%d", c->level);
	else
		snprintf(buf, len, "%s", c->kind == COMPRESS_LZ4 ? "lz4" : "none");
	return buf;
}

const char *codec_plan_name(const struct codec_plan *p, char *buf, unsigned len)
{
	if (!p->hi_share || p->lo == p->hi)
		snprintf(buf, len, "%s", compress_kind_name(p->lo));
	else
		snprintf(buf, len, "%s+%s:%.0f%%", compress_kind_name(p->lo),
			 compress_kind_name(p->hi), p->hi_share * 100);
	return buf;
}
