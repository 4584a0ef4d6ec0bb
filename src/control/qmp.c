/* QMP's shapes on ferry's control socket, so that tools written for QEMU
 * (qmp-shell, the qemu.qmp library, a bench's own client) drive a ferry
 * migration unchanged: the greeting, qmp_capabilities, query-version,
 * migrate-set-capabilities and query-migrate-capabilities, and QMP's names
 * for the migration parameters ferry has (and ferry's own older ones).
 * docs/control.md, "QMP". */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control/commands.h"
#include "util/error.h"

/* ferry's number in the control protocol: 2 added QMP's shapes. */
#define CONTROL_PROTOCOL 2
/* QEMU's default xbzrle-cache-size and multifd-channels, for a capability
 * turned on without its parameter. */
#define QMP_XBZRLE_CACHE_DEFAULT (64ull << 20)
#define QMP_MULTIFD_DEFAULT	 2

/* Other names of a parameter, and ferry's (with its unit): QMP's, and
 * ferry's own before control protocol 2, still taken. */
static const struct {
	const char *other, *ferry;
	bool qmp;
} param_names[] = {
	{ "downtime-limit", "downtime-ms", true },
	{ "max-bandwidth", "max-bandwidth-bps", true },
	{ "xbzrle-cache-size", "xbzrle-cache-bytes", true },
	{ "multifd-channels", "channels", true },
	{ "multifd-compression", "compress", true },
	{ "cpu-throttle-initial", "throttle-initial-pct", true },
	{ "cpu-throttle-increment", "throttle-increment-pct", true },
	{ "max-cpu-throttle", "throttle-max-pct", true },
	{ "xbzrle-cache", "xbzrle-cache-bytes", false },
	{ "timeout", "timeout-s", false },
	{ "recover-timeout", "recover-timeout-s", false },
	{ "throttle-initial", "throttle-initial-pct", false },
	{ "throttle-increment", "throttle-increment-pct", false },
	{ "throttle-max", "throttle-max-pct", false },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static json_t *version_json(void)
{
	int major = 0, minor = 0, micro = 0;
	char package[64];

	sscanf(FERRY_VERSION, "%d.%d.%d", &major, &minor, &micro);
	snprintf(package, sizeof(package), "ferry %s", FERRY_VERSION);
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "major", major, "minor", minor, "micro",
			 micro, "package", package);
}

json_t *control_greeting(void)
{
	return json_pack("{s:{s:o,s:[]},s:{s:s,s:i}}", "QMP", "version", version_json(),
			 "capabilities", "ferry", "version", FERRY_VERSION, "protocol",
			 CONTROL_PROTOCOL);
}

json_t *control_qmp_capabilities(struct control_ctx *ctx, json_t *args)
{
	(void)ctx;
	if (json_object_size(args)) {
		err_set(-EINVAL,
			"qmp_capabilities: ferry offers no capability (it takes no argument)");
		return NULL;
	}
	return json_object();
}

json_t *control_query_version(struct control_ctx *ctx, json_t *args)
{
	(void)ctx;
	(void)args;
	return version_json();
}

const char *qmp_param_name(const char *ferry)
{
	for (size_t i = 0; i < N(param_names); i++)
		if (param_names[i].qmp && !strcmp(param_names[i].ferry, ferry))
			return param_names[i].other;
	return NULL;
}

/* ferry's name for key: itself, or the one it is another name of. */
static const char *ferry_name(const char *key)
{
	for (size_t i = 0; i < N(param_names); i++)
		if (!strcmp(param_names[i].other, key))
			return param_names[i].ferry;
	return key;
}

static bool listed(const char *const *names, const char *name)
{
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

json_t *qmp_params_in(json_t *args, const char *const *known, const char *const *also)
{
	json_t *out = json_object(), *v;
	const char *key;

	json_object_foreach(args, key, v)
	{
		const char *name = ferry_name(key);

		if (!listed(known, name) && (!also || !listed(also, name))) {
			json_decref(out);
			err_set(-EINVAL, "no parameter '%s' here (docs/control.md lists them)",
				key);
			return NULL;
		}
		if (json_object_get(out, name)) {
			json_decref(out);
			err_set(-EINVAL, "'%s' is given twice (under two of its names)", name);
			return NULL;
		}
		json_object_set(out, name, v);
	}
	return out;
}

/* The capabilities ferry has, as parameters: on and off. */
static bool capability_state(const struct mig_params *p, const char *name)
{
	if (!strcmp(name, "xbzrle"))
		return p->xbzrle_cache_bytes > 0;
	if (!strcmp(name, "multifd"))
		return p->channels > 0;
	if (!strcmp(name, "auto-converge"))
		return p->converge == CONVERGE_THROTTLE;
	if (!strcmp(name, "postcopy-ram"))
		return p->postcopy;
	if (!strcmp(name, "x-ignore-shared"))
		return p->local;
	return true; /* events: ferry always sends them */
}

static const char *const capabilities[] = { "xbzrle",	    "multifd",	       "auto-converge",
					    "postcopy-ram", "x-ignore-shared", "events" };

static void capability_set(struct mig_params *p, const char *name, bool on)
{
	if (!strcmp(name, "xbzrle") && on != capability_state(p, name))
		p->xbzrle_cache_bytes = on ? QMP_XBZRLE_CACHE_DEFAULT : 0;
	else if (!strcmp(name, "multifd") && on != capability_state(p, name))
		p->channels = on ? QMP_MULTIFD_DEFAULT : 0;
	else if (!strcmp(name, "auto-converge") && on != capability_state(p, name))
		p->converge = on ? CONVERGE_THROTTLE : CONVERGE_AUTO;
	else if (!strcmp(name, "postcopy-ram"))
		p->postcopy = on;
	else if (!strcmp(name, "x-ignore-shared"))
		p->local = on;
}

static bool known_capability(const char *name)
{
	for (size_t i = 0; i < N(capabilities); i++)
		if (!strcmp(capabilities[i], name))
			return true;
	return false;
}

/* Every entry {"capability": NAME, "state": BOOL}, NAME one ferry has. */
static int check_capabilities(json_t *list)
{
	char known[128] = "";
	size_t i;
	json_t *e;

	if (!json_is_array(list))
		return err_set(-EINVAL, "migrate-set-capabilities needs \"capabilities\": "
					"[{\"capability\": NAME, \"state\": true|false}, ...]");
	json_array_foreach(list, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "capability"));

		if (!name || !json_is_boolean(json_object_get(e, "state")) ||
		    json_object_size(e) != 2)
			return err_set(-EINVAL,
				       "capability %zu must be {\"capability\": NAME, "
				       "\"state\": true|false}",
				       i);
		if (known_capability(name))
			continue;
		for (size_t k = 0; k < N(capabilities); k++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
				 k ? ", " : "", capabilities[k]);
		return err_set(-EINVAL, "ferry has no capability '%s' (it has %s)", name, known);
	}
	return 0;
}

json_t *control_migrate_set_capabilities(struct control_ctx *ctx, json_t *args)
{
	json_t *list = json_object_get(args, "capabilities"), *e;
	size_t i;

	if (json_object_size(args) != 1 || check_capabilities(list) < 0) {
		if (json_object_size(args) != 1)
			err_set(-EINVAL, "migrate-set-capabilities takes only \"capabilities\"");
		return NULL;
	}
	json_array_foreach(list, i, e)
		capability_set(&ctx->params, json_string_value(json_object_get(e, "capability")),
			       json_is_true(json_object_get(e, "state")));
	return json_object();
}

json_t *control_query_migrate_capabilities(struct control_ctx *ctx, json_t *args)
{
	json_t *list = json_array();

	(void)args;
	for (size_t i = 0; i < N(capabilities); i++)
		json_array_append_new(list,
				      json_pack("{s:s,s:b}", "capability", capabilities[i], "state",
						capability_state(&ctx->params, capabilities[i])));
	return list;
}
