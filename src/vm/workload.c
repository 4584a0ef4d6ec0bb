#include "vm/workload.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/abi.h"
#include "util/error.h"
#include "util/size.h"
#include "vm/vm.h"

#define HELP_KINDS "idle, dirty or touch"

static const char *const kinds[] = {
	[FERRY_WL_IDLE] = "idle", [FERRY_WL_DIRTY] = "dirty", [FERRY_WL_TOUCH] = "touch"
};
static const char *const patterns[] = { "random", "sequential", "hotset" };
static const char *const writes[] = { "byte", "word", "page" };
static const char *const datas[] = { "zero", "counter", "text", "random" };

static const char *workload_kind_name(uint32_t kind)
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

static const char *const onoff[] = { "off", "on" };

/* Keys whose value is one name from a list. */
static const struct {
	const char *key;
	const char *const *names;
	unsigned n;
	size_t offset; /* of the uint32_t field in struct ferry_workload_args */
	const char *hint;
} name_keys[] = {
	{ "pattern", patterns, 3, offsetof(struct ferry_workload_args, pattern),
	  "random, sequential or hotset" },
	{ "write", writes, 3, offsetof(struct ferry_workload_args, write), "byte, word or page" },
	{ "data", datas, 4, offsetof(struct ferry_workload_args, data),
	  "zero, counter, text or random" },
	{ "check", onoff, 2, offsetof(struct ferry_workload_args, check), "on or off" },
	{ "spin", onoff, 2, offsetof(struct ferry_workload_args, spin), "on or off" },
};

static int parse_named(struct ferry_workload_args *a, const char *key, const char *value)
{
	for (size_t i = 0; i < sizeof(name_keys) / sizeof(name_keys[0]); i++) {
		if (strcmp(key, name_keys[i].key))
			continue;
		if (pick(value, name_keys[i].names, name_keys[i].n,
			 (uint32_t *)((char *)a + name_keys[i].offset)) < 0)
			return err_set(-EINVAL, "workload: %s=%s is not %s", key, value,
				       name_keys[i].hint);
		return 0;
	}
	return -ENOENT;
}

static int parse_key(struct ferry_workload_args *a, const char *key, const char *value)
{
	uint64_t bytes;
	char *end;
	int rc = parse_named(a, key, value);

	if (rc != -ENOENT)
		return rc;
	if (!strcmp(key, "wss")) {
		if (size_parse(value, &bytes) < 0 || bytes < FERRY_PAGE_SIZE)
			return err_set(-EINVAL, "workload: wss=%s is not a size like 512M", value);
		a->wss_pages = bytes / FERRY_PAGE_SIZE;
	} else if (!strcmp(key, "rate")) {
		if (parse_rate(value, &a->rate_pps) < 0)
			return err_set(
				-EINVAL,
				"workload: rate=%s is not max, a size per second like 100M, or pages per second like 5000pps",
				value);
	} else if (!strcmp(key, "hot") || !strcmp(key, "hits")) {
		if (parse_percent(value, key[1] == 'o' ? &a->hot_pct : &a->hot_hits_pct) < 0)
			return err_set(-EINVAL, "workload: %s=%s is not a percentage", key, value);
	} else if (!strcmp(key, "dirtiers")) {
		a->dirtiers = (uint32_t)strtoul(value, &end, 10);
		if (end == value || *end || a->dirtiers < 1 || a->dirtiers > FERRY_MAX_VCPUS)
			return err_set(-EINVAL, "workload: dirtiers=%s is not a number of vCPUs",
				       value);
	} else if (!strcmp(key, "seed")) {
		a->seed = strtoull(value, &end, 0);
		if (end == value || *end)
			return err_set(-EINVAL, "workload: seed=%s is not a number", value);
	} else {
		return err_set(
			-EINVAL,
			"workload: unknown key '%s' (known: wss, rate, pattern, write, data, hot, hits, dirtiers, check, spin, seed)",
			key);
	}
	return 0;
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
		return err_set(
			-EINVAL,
			"workload: working set of %llu MiB does not fit in %llu MiB of guest memory (at most %llu MiB)",
			(unsigned long long)(a->wss_pages >> 8),
			(unsigned long long)(mem_bytes >> 20), (unsigned long long)(max >> 8));
	if (a->kind == FERRY_WL_DIRTY && a->data == FERRY_DATA_ZERO)
		return err_set(
			-EINVAL,
			"workload: dirty needs data=counter, text or random; zero pages would not change");
	if (a->kind == FERRY_WL_TOUCH)
		a->check = 0; /* touch writes pages nobody filled: nothing to check against */
	return 0;
}

int workload_parse(const char *spec, uint64_t mem_bytes, struct ferry_workload_args *out)
{
	struct ferry_workload_args a = {
		.pattern = FERRY_PAT_RANDOM,
		.write = FERRY_WRITE_PAGE,
		.data = FERRY_DATA_RANDOM,
		.hot_pct = 10,
		.hot_hits_pct = 90,
		.check = 1,
		.seed = 1,
	};
	const char *colon = strchr(spec, ':');
	char *rest, *save = NULL;
	int rc = parse_kind(spec, colon ? (size_t)(colon - spec) : strlen(spec), &a.kind);

	if (rc < 0 || !colon)
		goto out;
	rest = strdup(colon + 1);
	if (!rest)
		return err_set(-ENOMEM, "out of memory");
	for (char *kv = strtok_r(rest, ",", &save); kv && rc == 0;
	     kv = strtok_r(NULL, ",", &save)) {
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
	snprintf(buf, len, "%s wss=%s rate=%s pattern=%s write=%s data=%s check=%s%s%s",
		 workload_kind_name(a->kind), wss, rate, patterns[a->pattern % 3],
		 writes[a->write % 3], datas[a->data % 4], a->check ? "on" : "off",
		 a->spin ? " spin=on" : "", a->dirtiers ? " (some vCPUs compute)" : "");
}

int workload_check(const char *spec, uint64_t mem_bytes, char *desc, size_t len)
{
	struct ferry_workload_args a;
	int rc = workload_parse(spec, mem_bytes, &a);

	if (rc == 0)
		workload_describe(&a, desc, len);
	return rc;
}

bool workload_of_guest(const struct vm *vm, char *desc, size_t len)
{
	const struct ferry_params *p = vm_read_ptr(vm, FERRY_PARAMS_GPA, sizeof(*p));

	if (!p || p->magic != FERRY_PARAMS_MAGIC) {
		snprintf(desc, len, "unknown");
		return false;
	}
	workload_describe(&p->wl, desc, len);
	return true;
}
