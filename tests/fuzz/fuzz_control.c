/* Fuzz target: the control socket's commands, as a client's JSON line
 * reaches them (control/server.c handle_request, control_execute), on a
 * ferry without a VM. Commands that act outside this process (upgrade
 * starts one, migrate-incoming listens, migrate-incoming-prealloc maps
 * memory of the size asked, calc-dirty-rate and guest-verify need a
 * guest, quit stops the ferry) are left out; every other one parses its
 * arguments and answers or refuses with a sentence. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/commands.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool runs_here(const char *name)
{
	static const char *const safe[] = { "query-status",
					    "stop",
					    "cont",
					    "migrate",
					    "migrate-set-parameters",
					    "query-migrate",
					    "migrate-cancel",
					    "migrate-start-postcopy",
					    "migrate-incoming-cancel",
					    "migrate-recover",
					    "query-dirty-rate",
					    "query-forecast",
					    "qmp_capabilities",
					    "query-version",
					    "query-commands",
					    "query-migrate-parameters",
					    "migrate-set-capabilities",
					    "query-migrate-capabilities",
					    "migrate_cancel",
					    "no-such-command" };

	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		if (!strcmp(name, safe[i]))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct control_ctx ctx;
	static bool ready;
	struct control_later later = { 0 };
	const char *class = "GenericError", *name;
	json_t *req = json_loadb((const char *)data, size, 0, NULL), *args, *result;

	if (!ready) {
		ctx_init(&ctx);
		ready = true;
	}
	name = json_string_value(json_object_get(req, "execute"));
	args = json_object_get(req, "arguments");
	if (name && runs_here(name) && (!args || json_is_object(args))) {
		err_clear();
		result = control_execute(&ctx, name, args, &class, &later);
		if (!result && !err_msg()[0] && strcmp(name, "migrate"))
			abort(); /* a refusal says why */
		if (later.active)
			abort(); /* none of these answers later */
		json_decref(result);
	}
	json_decref(req);
	return 0;
}
