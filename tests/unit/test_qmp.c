/* QMP's shapes (control/qmp.c): the greeting carries QMP's key and ferry's
 * protocol; parameters come in under QMP's, ferry's and ferry's older
 * names and leave under ferry's, one given twice or unknown is refused;
 * capabilities turn ferry's parameters on and off and read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "control/commands.h"
#include "util/error.h"

static const char *const keys[] = { "downtime-ms",	"max-bandwidth-bps", "channels",
				    "throttle-max-pct", "timeout-s",	     NULL };

static void test_greeting(void **unused)
{
	json_t *g = control_greeting();

	(void)unused;
	assert_non_null(json_object_get(json_object_get(g, "QMP"), "version"));
	assert_true(json_is_array(json_object_get(json_object_get(g, "QMP"), "capabilities")));
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(g, "ferry"), "protocol")), 2);
	json_decref(g);
}

static void test_names(void **unused)
{
	json_t *in = json_pack("{s:i,s:i,s:i,s:i,s:i}", "downtime-limit", 50, "max-bandwidth", 1000,
			       "multifd-channels", 4, "throttle-max", 80, "timeout", 9);
	json_t *out = qmp_params_in(in, keys, NULL);

	(void)unused;
	assert_non_null(out);
	assert_int_equal(json_object_size(out), 5);
	assert_int_equal(json_integer_value(json_object_get(out, "downtime-ms")), 50);
	assert_int_equal(json_integer_value(json_object_get(out, "max-bandwidth-bps")), 1000);
	assert_int_equal(json_integer_value(json_object_get(out, "channels")), 4);
	assert_int_equal(json_integer_value(json_object_get(out, "throttle-max-pct")), 80);
	assert_int_equal(json_integer_value(json_object_get(out, "timeout-s")), 9);
	assert_string_equal(qmp_param_name("downtime-ms"), "downtime-limit");
	assert_null(qmp_param_name("timeout-s")); /* an older ferry name, not QMP's */
	json_decref(out);
	json_decref(in);
}

static void test_refusals(void **unused)
{
	json_t *twice = json_pack("{s:i,s:i}", "downtime-limit", 5, "downtime-ms", 6);
	json_t *unknown = json_pack("{s:i}", "announce-rounds", 5);
	json_t *also = json_pack("{s:s}", "uri", "unix:/x");
	static const char *const uri[] = { "uri", NULL };

	(void)unused;
	assert_null(qmp_params_in(twice, keys, NULL));
	assert_non_null(strstr(err_msg(), "'downtime-ms' is given twice"));
	assert_null(qmp_params_in(unknown, keys, NULL));
	assert_non_null(strstr(err_msg(), "no parameter 'announce-rounds'"));
	assert_null(qmp_params_in(also, keys, NULL));
	json_decref(qmp_params_in(also, keys, uri)); /* allowed there */
	json_decref(twice);
	json_decref(unknown);
	json_decref(also);
}

/* The state of capability name in query-migrate-capabilities. */
static int state(struct control_ctx *ctx, const char *name)
{
	json_t *list = control_query_migrate_capabilities(ctx, NULL), *e;
	int found = -1;
	size_t i;

	json_array_foreach(
		list, i, e) if (!strcmp(json_string_value(json_object_get(e, "capability")), name))
		found = json_is_true(json_object_get(e, "state"));
	json_decref(list);
	return found;
}

static void test_capabilities(void **unused)
{
	struct control_ctx ctx;
	json_t *on = json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "capabilities", "capability", "xbzrle",
			       "state", 1, "capability", "multifd", "state", 1);
	json_t *off =
		json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "multifd", "state", 0);
	json_t *bad = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "zero-blocks",
				"state", 1);

	(void)unused;
	ctx_init(&ctx);
	assert_int_equal(state(&ctx, "xbzrle"), 0);
	json_decref(control_migrate_set_capabilities(&ctx, on));
	assert_int_equal(state(&ctx, "xbzrle"), 1);
	assert_int_equal(state(&ctx, "multifd"), 1);
	assert_int_equal(ctx.params.xbzrle_cache_bytes, 64ull << 20);
	assert_int_equal(ctx.params.channels, 2);
	json_decref(control_migrate_set_capabilities(&ctx, off));
	assert_int_equal(ctx.params.channels, 0);
	assert_null(control_migrate_set_capabilities(&ctx, bad));
	assert_non_null(strstr(err_msg(), "no capability 'zero-blocks'"));
	assert_int_equal(state(&ctx, "events"), 1);
	ctx_destroy(&ctx);
	json_decref(on);
	json_decref(off);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_capabilities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
