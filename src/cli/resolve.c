/* ferry migrate-resolve: settle a migration whose outcome is unknown (COMMIT
 * went out, no answer came) by asking the destination, without guessing.
 * Either the guest runs there (the source quits) or the destination is
 * fenced first and the source resumes. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "control/client.h"
#include "util/error.h"

static const char resolve_help[] =
	"Usage: ferry migrate-resolve --control SRC --dest-control DST\n"
	"\n"
	"Settle a migration whose outcome is unknown: the source sent COMMIT and heard\n"
	"nothing back, so the guest may run on the destination and stays paused here.\n"
	"ferry asks the destination's control socket what became of that migration\n"
	"(matched by its id):\n"
	"  - it runs the guest: the source quits (its copy is stale);\n"
	"  - it is still waiting for COMMIT: it is fenced (migrate-incoming-cancel,\n"
	"    it will refuse the COMMIT if it comes late), then the source resumes;\n"
	"  - it discarded the migration before COMMIT: the source resumes.\n"
	"If the destination cannot be asked, or knows nothing of the migration, nothing\n"
	"is changed and ferry says what to check.\n"
	"\n"
	"  --control SRC        the source's control socket\n"
	"  --dest-control DST   the destination's control socket\n"
	"\n"
	"Exit status: 0 settled, 1 not settled (the guest stays paused here), 2 usage.\n";

struct resolve {
	const char *src, *dst;
	char id[32];
};

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The source's migration must be unknown; its id in r->id. */
static int source_unknown(struct resolve *r)
{
	json_t *m;
	int rc = control_call(r->src, "query-migrate", NULL, &m);

	if (rc < 0)
		return fail("%s", err_msg());
	if (strcmp(str(m, "status"), "unknown")) {
		fail("the migration at %s is %s, not unknown: there is nothing to resolve", r->src,
		     str(m, "status"));
		json_decref(m);
		return 1;
	}
	snprintf(r->id, sizeof(r->id), "%s", str(m, "id"));
	json_decref(m);
	return 0;
}

static int resume_source(struct resolve *r, const char *what)
{
	json_t *args = json_pack("{s:b}", "force", 1), *ok;
	int rc = control_call(r->src, "cont", args, &ok);

	json_decref(args);
	if (rc < 0)
		return fail("%s, but resuming the source failed: %s", what, err_msg());
	json_decref(ok);
	printf("%s: the guest runs on the source again.\n", what);
	return 0;
}

static int quit_source(struct resolve *r)
{
	json_t *ok;

	if (control_call(r->src, "quit", NULL, &ok) < 0)
		return fail("the guest runs on the destination, but the source did not quit: %s",
			    err_msg());
	json_decref(ok);
	printf("The guest runs on the destination (migration %s); the source has quit.\n", r->id);
	return 0;
}

/* What the destination says of the migration: "running", "pending" (not
 * yet committed), "discarded", or NULL when it knows nothing of it. */
static const char *dest_view(struct resolve *r, json_t **why)
{
	json_t *st, *in;
	const char *phase, *view = NULL;

	*why = NULL;
	if (control_call(r->dst, "query-status", NULL, &st) < 0)
		return "unreachable";
	in = json_object_get(st, "incoming");
	phase = str(in, "phase");
	if (!strcmp(str(in, "id"), r->id) && !strcmp(phase, "running"))
		view = "running";
	else if (!strcmp(str(in, "id"), r->id) &&
		 (!strcmp(phase, "receiving") || !strcmp(phase, "loaded")))
		view = "pending";
	else if (!strcmp(str(in, "last_failed_id"), r->id))
		view = "discarded";
	if (view && !strcmp(view, "discarded"))
		*why = json_incref(json_object_get(in, "last_failure"));
	json_decref(st);
	return view;
}

static int settle(struct resolve *r)
{
	json_t *why, *ok;
	const char *view = dest_view(r, &why);
	char what[768];
	int rc;

	if (view && !strcmp(view, "pending")) {
		rc = control_call(r->dst, "migrate-incoming-cancel", NULL, &ok);
		if (rc == 0) {
			json_decref(ok);
			return resume_source(
				r, "The destination had not started the guest and is fenced");
		}
		view = dest_view(r, &why); /* COMMIT may have won the race: look again */
	}
	if (view && !strcmp(view, "running"))
		return quit_source(r);
	if (view && !strcmp(view, "discarded")) {
		snprintf(what, sizeof(what), "The destination discarded the migration (%s)",
			 json_string_value(why) ?: "before COMMIT");
		json_decref(why);
		return resume_source(r, what);
	}
	if (view && !strcmp(view, "unreachable"))
		return fail(
			"cannot ask the destination: %s. The guest stays paused here; if you know the destination does not run it (its ferry is gone), resume it with: ferry ctl --control %s cont '{\"force\": true}'",
			err_msg(), r->src);
	return fail(
		"the destination at %s has no record of migration %s (its ferry may have restarted, or it is not that migration's destination). The guest stays paused here; if you know it does not run there, resume it with: ferry ctl --control %s cont '{\"force\": true}'",
		r->dst, r->id, r->src);
}

int cmd_migrate_resolve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "dest-control", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct resolve r = { 0 };
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			r.src = control_path(optarg);
			break;
		case 'd':
			r.dst = control_path(optarg);
			break;
		case 'h':
			fputs(resolve_help, stdout);
			return 0;
		default:
			return option_error("migrate-resolve", opt, argv);
		}
	}
	if (optind < argc)
		return extra_args_error("migrate-resolve", argc, argv);
	if (!r.src || !r.dst)
		return usage_error("migrate-resolve",
				   "--control SRC and --dest-control DST are required");
	rc = source_unknown(&r);
	return rc ? rc : settle(&r);
}
