/* The destination's commands on the control socket: migrate-incoming (wait
 * for a guest again, once this one left), migrate-incoming-cancel
 * (fence), migrate-incoming-prealloc (make memory ready), migrate-recover
 * (take a broken post-copy up again), and its part of query-status. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "control/commands.h"
#include "migration/recv/dest.h"
#include "migration/send/source.h"
#include "vm/vm.h"
#include "util/error.h"
#include "util/size.h"

static int need_incoming(struct control_ctx *ctx)
{
	return ctx->incoming ? 0 : err_set(-EINVAL, "this ferry was not started with --incoming");
}

json_t *control_migrate_incoming_cancel(struct control_ctx *ctx, json_t *args)
{
	uint64_t id;

	(void)args;
	if (need_incoming(ctx) < 0 || mig_dest_fence(ctx->incoming, &id) < 0)
		return NULL;
	return json_pack("{s:b,s:o}", "fenced", 1, "id", control_id_json(id));
}

json_t *control_migrate_recover(struct control_ctx *ctx, json_t *args)
{
	const char *uri = json_string_value(json_object_get(args, "uri"));
	const char *key;
	json_t *v;

	if (need_incoming(ctx) < 0)
		return NULL;
	json_object_foreach(args, key, v) if (strcmp(key, "uri"))
	{
		err_set(-EINVAL, "migrate-recover takes uri, not '%s'", key);
		return NULL;
	}
	if (!uri) {
		err_set(-EINVAL, "migrate-recover needs a \"uri\" to listen on: tcp:HOST:PORT or "
				 "unix:PATH");
		return NULL;
	}
	return mig_dest_recover(ctx->incoming, uri) < 0 ? NULL : json_object();
}

/* A deadline in seconds (0: no end) at key, if given, into *out. */
static int deadline(json_t *args, const char *key, uint32_t *out)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)MIG_TIMEOUT_S_MAX)
		return err_set(-EINVAL, "%s must be seconds from 0 (no end) to %llu", key,
			       (unsigned long long)MIG_TIMEOUT_S_MAX);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

/* args over o: "uri" and deadlines, nothing else. */
static int incoming_args(json_t *args, struct mig_dest_opts *o)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) if (strcmp(key, "uri") &&
					      strcmp(key, "handshake-timeout-s") &&
					      strcmp(key, "transfer-timeout-s") &&
					      strcmp(key, "recover-timeout-s"))
	{
		return err_set(-EINVAL,
			       "migrate-incoming takes \"uri\" and deadlines (handshake-timeout-s, "
			       "transfer-timeout-s, recover-timeout-s), not '%s'",
			       key);
	}
	if (!json_string_value(json_object_get(args, "uri")))
		return err_set(-EINVAL,
			       "migrate-incoming needs a \"uri\": tcp:HOST:PORT, unix:PATH");
	if (deadline(args, "handshake-timeout-s", &o->handshake_timeout_s) < 0 ||
	    deadline(args, "transfer-timeout-s", &o->transfer_timeout_s) < 0 ||
	    deadline(args, "recover-timeout-s", &o->recover_timeout_s) < 0)
		return -EINVAL;
	return 0;
}

/* On a ferry whose guest migrated away: wait for a guest on uri again (the
 * VM that left is freed, the process and its control socket stay), with
 * ferry run --incoming's limits and deadlines, or the defaults. */
json_t *control_migrate_incoming(struct control_ctx *ctx, json_t *args)
{
	const char *uri = json_string_value(json_object_get(args, "uri"));
	struct vm *vm = ctx_vm(ctx);
	struct mig_dest_opts o = { .io_timeout_ms = ctx->params.io_timeout_ms,
				   .recover_timeout_s = MIG_RECOVER_S_DEFAULT,
				   .handshake_timeout_s = MIG_HANDSHAKE_S_DEFAULT,
				   .transfer_timeout_s = MIG_TRANSFER_S_DEFAULT,
				   .tls = ctx->tls };
	struct mig_dest *d;

	if (!vm)
		return NULL;
	if (ctx->has_incoming_opts) {
		o = ctx->incoming_opts;
		o.prealloc = false; /* that was at start-up */
	}
	if (incoming_args(args, &o) < 0)
		return NULL;
	if (ctx_migration_status(ctx) != MIG_COMPLETED) {
		err_set(-EINVAL,
			"the guest still runs here: migrate-incoming waits for a guest once "
			"this one has migrated away");
		return NULL;
	}
	o.mem_backend = vm->mem.backend;
	o.dirty_backend = vm->cfg.dirty_backend;
	pthread_mutex_lock(&ctx->lock);
	if (ctx->next)
		err_set(-EBUSY, "migrate-incoming was asked for already");
	else if (ctx->quit)
		err_set(-ESHUTDOWN, "this ferry is stopping");
	else if (mig_dest_open(uri, &o, &d) == 0)
		ctx->next = d;
	pthread_mutex_unlock(&ctx->lock);
	if (!ctx->next)
		return NULL;
	vm_stop(vm, false, 0, "the guest migrated away; waiting for one to come");
	return json_object();
}

static json_t *memory_json(const struct ready_info *m)
{
	json_t *r = json_pack("{s:s}", "state", ready_state_name(m->state));

	if (m->state == READY_NONE)
		return r;
	json_object_set_new(r, "bytes", json_integer((json_int_t)m->bytes));
	json_object_set_new(r, "backend", json_string(mem_backend_name(m->backend)));
	if (m->state == READY_FAILED)
		json_object_set_new(r, "error", json_string(m->error));
	else if (m->state != READY_PREPARING)
		json_object_set_new(r, "populate_ms", json_real(m->populate_ms));
	return r;
}

static bool poll_prealloc(struct control_ctx *ctx, struct control_later *l, json_t **result)
{
	struct ready_info m = mig_dest_stats(ctx->incoming).memory;

	(void)l;
	if (m.state == READY_PREPARING)
		return false;
	*result = NULL;
	if (m.state == READY_FAILED)
		err_set(-ENOMEM, "%s", m.error);
	else
		*result = memory_json(&m);
	return true;
}

/* mem (a size like "1G", or bytes) and backend (anon, memfd, hugetlb). */
static int parse_prealloc(json_t *args, uint64_t *bytes, enum mem_backend *backend)
{
	json_t *mem = json_object_get(args, "mem"), *be = json_object_get(args, "backend");
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) if (strcmp(key, "mem") && strcmp(key, "backend")) return err_set(
		-EINVAL, "migrate-incoming-prealloc takes mem and backend, not '%s'", key);
	if (json_is_integer(mem) && json_integer_value(mem) > 0)
		*bytes = (uint64_t)json_integer_value(mem);
	else if (!json_is_string(mem) || size_parse(json_string_value(mem), bytes) < 0)
		return err_set(-EINVAL, "mem must be a size like 1G: the memory to make ready");
	if (*bytes % (2u << 20) || *bytes < (16u << 20))
		return err_set(-EINVAL, "mem must be a multiple of 2M, at least 16M");
	*backend = MEM_ANON;
	if (be && (!json_is_string(be) || mem_backend_parse(json_string_value(be), backend) < 0))
		return err_set(-EINVAL, "backend must be anon, memfd or hugetlb");
	return 0;
}

/* Make memory ready for the next guest on a thread of its own; the answer
 * comes once it is ready, with how long that took. */
int control_migrate_incoming_prealloc(struct control_ctx *ctx, json_t *args,
				      struct control_later *l)
{
	enum mem_backend backend;
	uint64_t bytes;
	int rc = need_incoming(ctx);

	if (rc == 0)
		rc = parse_prealloc(args, &bytes, &backend);
	if (rc == 0)
		rc = mig_dest_prealloc(ctx->incoming, bytes, backend);
	if (rc < 0)
		return rc;
	l->poll = poll_prealloc;
	return 0;
}

bool control_incoming_guest_runs(struct control_ctx *ctx)
{
	enum dest_phase p;

	if (!ctx->incoming)
		return false;
	p = mig_dest_stats(ctx->incoming).phase;
	return p == DEST_RUNNING || p == DEST_POSTCOPY_PAUSED;
}

json_t *control_incoming_json(struct control_ctx *ctx)
{
	struct mig_dest_stats s;
	json_t *r;

	if (!ctx->incoming) /* not yet: ferry run sets it before it serves */
		return json_null();
	s = mig_dest_stats(ctx->incoming);
	r = json_pack("{s:s,s:I,s:I,s:i,s:i,s:o}", "phase", dest_phase_name(s.phase),
		      "pages_received", (json_int_t)s.pages_received, "bytes_received",
		      (json_int_t)s.bytes_received, "rounds", (int)s.rounds, "attempts",
		      (int)s.attempts, "memory", memory_json(&s.memory));

	if (s.id)
		json_object_set_new(r, "id", control_id_json(s.id));
	if (s.phase == DEST_LOADED) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		json_object_set_new(r, "commit_wait_ms", json_real(s.commit_wait_ms));
		json_object_set_new(r, "commit_deadline_unix_ms",
				    json_integer((json_int_t)now.tv_sec * 1000 +
						 now.tv_nsec / 1000000 +
						 (json_int_t)s.commit_wait_ms));
	}
	if (s.phase == DEST_POSTCOPY_PAUSED) {
		json_object_set_new(r, "paused_reason", json_string(s.paused_why));
		json_object_set_new(r, "recover_window_ms", json_real(s.recover_left_ms));
	}
	if (s.recoveries) {
		json_object_set_new(r, "recoveries", json_integer(s.recoveries));
		json_object_set_new(r, "recover_ms", json_real(s.recover_ms));
	}
	if (s.felt.known)
		json_object_set_new(r, "guest_gap_ms", json_real(s.felt.gap_ms));
	if (s.felt.stall_known)
		json_object_set_new(r, "guest_stall_max_ms", json_real(s.felt.stall_max_ms));
	if (s.failed_id || s.failure[0]) {
		json_object_set_new(r, "last_failure", json_string(s.failure));
		json_object_set_new(r, "last_failed_id", control_id_json(s.failed_id));
		json_object_set_new(r, "last_fenced", json_boolean(s.failed_fenced));
	}
	return r;
}
