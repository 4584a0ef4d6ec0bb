#include "vm/workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/size.h"

#define HELP_KINDS "idle, dirty or touch"

static const char *const kinds[] = { [FERRY_WL_IDLE] = "idle", [FERRY_WL_DIRTY] = "dirty",
				     [FERRY_WL_TOUCH] = "touch" };
static const char *const patterns[] = { "random", "sequential", "hotset" };
static const char *const writes[] = { "byte", "word", "page" };
static const char *const datas[] = { "zero", "counter", "text", "random" };

const char *workload_kind_name(uint32_t kind)
{
	return kind >= 1 && kind <= 3 ? kinds[kind] : "unknown";
}

uint64_t workload_max_wss_pages(uint64_t mem_bytes)
{
	uint64_t avail;

	if (mem_bytes <= FERRY_HEAP_GPA)
		return 0;
	avail = (mem_bytes - FERRY_HEAP_GPA) / FERRY_PAGE_SIZE;
	/* Each page costs 4 KiB plus 4 bytes of generation table. */
	return avail * 1024 / 1025 - 1;
}

static int pick(const char *value, const char *const *names, unsigned n, uint32_t *out)
{
	for (unsigned i = 0; i < n; i++)
		if (names[i] && !strcmp(value, names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static int parse_percent(const char *value, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(value, &end, 10);

	if (end == value || *end || v > 100)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* rate=max | N pps | SIZE per second (pages dirtied = SIZE / 4 KiB). */
static int parse_rate(const char *value, uint64_t *pps)
{
	uint64_t bytes;
	char *end;

	if (!strcmp(value, "max")) {
		*pps = 0;
		return 0;
	}
	*pps = strtoull(value, &end, 10);
	if (end != value && !strcmp(end, "pps") && *pps)
		return 0;
	if (size_parse(value, &bytes) < 0 || bytes < FERRY_PAGE_SIZE)
		return -EINVAL;
	*pps = bytes / FERRY_PAGE_SIZE;
	return 0;
}

static int parse_onoff(const char *value, uint32_t *out)
{
	if (!strcmp(value, "on") || !strcmp(value, "1"))
		*out = 1;
	else if (!strcmp(value, "off") || !strcmp(value, "0"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static int parse_key(struct ferry_workload_args *a, const char *key, const char *value)
{
	uint64_t bytes;

	if (!strcmp(key, "wss")) {
		if (size_parse(value, &bytes) < 0 || bytes < FERRY_PAGE_SIZE)
			return err_set(-EINVAL, "workload: wss=%s is not a size like 512M", value);
		a->wss_pages = bytes / FERRY_PAGE_SIZE;
		return 0;
	}
	if (!strcmp(key, "rate"))
		return parse_rate(value, &a->rate_pps) ? err_set(-EINVAL,
				"workload: rate=%s is not max, a size per second like 100M, or pages per second like 5000pps",
				value) : 0;
	if (!strcmp(key, "pattern"))
		return pick(value, patterns, 3, &a->pattern) ? err_set(-EINVAL,
				"workload: pattern=%s is not random, sequential or hotset", value) : 0;
	if (!strcmp(key, "write"))
		return pick(value, writes, 3, &a->write) ? err_set(-EINVAL,
				"workload: write=%s is not byte, word or page", value) : 0;
	if (!strcmp(key, "data"))
		return pick(value, datas, 4, &a->data) ? err_set(-EINVAL,
				"workload: data=%s is not zero, counter, text or random", value) : 0;
	if (!strcmp(key, "hot"))
		return parse_percent(value, &a->hot_pct) ? err_set(-EINVAL,
				"workload: hot=%s is not a percentage of the working set", value) : 0;
	if (!strcmp(key, "hits"))
		return parse_percent(value, &a->hot_hits_pct) ? err_set(-EINVAL,
				"workload: hits=%s is not a percentage of writes", value) : 0;
	if (!strcmp(key, "check"))
		return parse_onoff(value, &a->check) ? err_set(-EINVAL,
				"workload: check=%s is not on or off", value) : 0;
	if (!strcmp(key, "spin"))
		return parse_onoff(value, &a->spin) ? err_set(-EINVAL,
				"workload: spin=%s is not on or off", value) : 0;
	if (!strcmp(key, "seed")) {
		char *end;

		a->seed = strtoull(value, &end, 0);
		return end == value || *end ? err_set(-EINVAL, "workload: seed=%s is not a number", value) : 0;
	}
	return err_set(-EINVAL,
		       "workload: unknown key '%s' (known: wss, rate, pattern, write, data, hot, hits, check, spin, seed)",
		       key);
}

static int parse_kind(const char *spec, size_t len, uint32_t *kind)
{
	for (uint32_t k = 1; k <= 3; k++)
		if (strlen(kinds[k]) == len && !strncmp(spec, kinds[k], len)) {
			*kind = k;
			return 0;
		}
	return err_set(-EINVAL, "workload '%.*s' is unknown: use " HELP_KINDS, (int)len, spec);
}

static int check_result(struct ferry_workload_args *a, uint64_t mem_bytes)
{
	uint64_t max = workload_max_wss_pages(mem_bytes);

	if (!a->wss_pages || a->wss_pages > max)
		a->wss_pages = a->wss_pages ? a->wss_pages : max;
	if (a->wss_pages > max)
		return err_set(-EINVAL, "workload: working set of %llu MiB does not fit in %llu MiB of guest memory (at most %llu MiB)",
			       (unsigned long long)(a->wss_pages >> 8),
			       (unsigned long long)(mem_bytes >> 20), (unsigned long long)(max >> 8));
	if (a->kind == FERRY_WL_DIRTY && a->data == FERRY_DATA_ZERO)
		return err_set(-EINVAL, "workload: dirty needs data=counter, text or random; zero pages would not change");
	if (a->kind == FERRY_WL_TOUCH)
		a->check = 0; /* touch writes pages nobody filled: nothing to check against */
	return 0;
}

int workload_parse(const char *spec, uint64_t mem_bytes, struct ferry_workload_args *out)
{
	struct ferry_workload_args a = {
		.pattern = FERRY_PAT_RANDOM, .write = FERRY_WRITE_PAGE, .data = FERRY_DATA_RANDOM,
		.hot_pct = 10, .hot_hits_pct = 90, .check = 1, .seed = 1,
	};
	const char *colon = strchr(spec, ':');
	char *rest, *save = NULL;
	int rc = parse_kind(spec, colon ? (size_t)(colon - spec) : strlen(spec), &a.kind);

	if (rc < 0 || !colon)
		goto out;
	rest = strdup(colon + 1);
	if (!rest)
		return err_set(-ENOMEM, "out of memory");
	for (char *kv = strtok_r(rest, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			rc = err_set(-EINVAL, "workload: '%s' is not key=value", kv);
			break;
		}
		*eq = '\0';
		rc = parse_key(&a, kv, eq + 1);
	}
	free(rest);
out:
	if (rc == 0)
		rc = check_result(&a, mem_bytes);
	if (rc == 0)
		*out = a;
	return rc;
}

void workload_describe(const struct ferry_workload_args *a, char *buf, size_t len)
{
	char wss[32], rate[48];

	size_format(a->wss_pages * FERRY_PAGE_SIZE, wss, sizeof(wss));
	if (a->rate_pps)
		snprintf(rate, sizeof(rate), "%llu pages/s", (unsigned long long)a->rate_pps);
	else
		snprintf(rate, sizeof(rate), "max");
	snprintf(buf, len, "%s wss=%s rate=%s pattern=%s write=%s data=%s check=%s%s",
		 workload_kind_name(a->kind), wss, rate, patterns[a->pattern % 3],
		 writes[a->write % 3], datas[a->data % 4], a->check ? "on" : "off",
		 a->spin ? " spin=on" : "");
}
