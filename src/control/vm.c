/* VM commands on the control socket: query-status, stop, cont, quit and
 * guest-verify. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/commands.h"
#include "migration/send/source.h"
#include "util/error.h"
#include "util/page.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/guest_status.h"
#include "vm/vm.h"

/* How long the guest may take to check all its pages. */
#define CHECK_TIMEOUT_S 120

static json_t *guest_counters(struct vm *vm)
{
	json_t *per_vcpu = json_array();
	uint64_t written = 0, passes = 0, errors = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct guest_vcpu_counters c = guest_vcpu_counters(vm, i);

		written += c.pages_written;
		passes += c.passes;
		errors += c.verify_errors;
		json_array_append_new(per_vcpu, json_pack("{s:I,s:I,s:I,s:I,s:f}", "pages_written",
							  (json_int_t)c.pages_written, "passes",
							  (json_int_t)c.passes, "verify_errors",
							  (json_int_t)c.verify_errors, "work",
							  (json_int_t)c.work, "stall_max_ms",
							  guest_vcpu_stall_max_ms(vm, i)));
	}
	return json_pack("{s:I,s:I,s:I,s:o}", "pages_written", (json_int_t)written, "passes",
			 (json_int_t)passes, "verify_errors", (json_int_t)errors, "per_vcpu",
			 per_vcpu);
}

static const char *run_state(struct control_ctx *ctx, const struct vm_status *st)
{
	return ctx_migration_status(ctx) == MIG_COMPLETED ? "postmigrate"
							  : vm_state_name(st->state);
}

json_t *control_query_status(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	struct vm_status st;
	json_t *r;
	bool started;

	(void)args;
	if (!vm) {
		started = control_incoming_guest_runs(ctx);
		return json_pack("{s:s,s:b,s:b,s:o,s:i,s:s}", "status",
				 started ? "running" : "incoming", "running", started, "singlestep",
				 0, "incoming", control_incoming_json(ctx), "pid", (int)getpid(),
				 "version", FERRY_VERSION);
	}
	st = vm_get_status(vm);
	r = json_pack("{s:s,s:i,s:I,s:s,s:s,s:s,s:f,s:I,s:I}", "status", run_state(ctx, &st),
		      "vcpus", (int)vm->nr_vcpus, "memory_bytes", (json_int_t)vm->mem.size,
		      "mem_backend", mem_backend_name(vm->mem.backend), "dirty_backend",
		      dirty_backend_name(vm->dirty), "workload", ctx->workload, "dirty_rate_pps",
		      ctx->dirty_rate_pps, "uptime_ms",
		      (json_int_t)((time_now_ns() - ctx->start_ns) / NS_PER_MS), "last_pause_us",
		      (json_int_t)(st.last_pause_ns / NS_PER_US));
	json_object_set_new(r, "pid", json_integer(getpid()));
	json_object_set_new(r, "version", json_string(FERRY_VERSION));
	/* QMP's: whether the vCPUs run, and a field QEMU always has. */
	json_object_set_new(r, "running", json_boolean(!strcmp(run_state(ctx, &st), "running")));
	json_object_set_new(r, "singlestep", json_false());
	if (st.stopped) {
		json_object_set_new(r, "stop_reason", json_string(st.stop_reason));
		json_object_set_new(r, "exit_code", json_integer(st.exit_code));
		json_object_set_new(r, "failed", json_boolean(st.failed));
	}
	json_object_set_new(r, "dirty_rate_bps",
			    json_integer((json_int_t)(ctx->dirty_rate_pps * FERRY_PAGE_SIZE)));
	json_object_set_new(r, "guest", guest_counters(vm));
	json_object_set_new(
		r, "guest_stale_reports",
		json_integer((json_int_t)__atomic_load_n(&vm->verify_reports, __ATOMIC_RELAXED)));
	if (ctx->incoming)
		json_object_set_new(r, "incoming", control_incoming_json(ctx));
	return r;
}

json_t *control_quit(struct control_ctx *ctx, json_t *args)
{
	(void)args;
	ctx_request_stop(ctx, "quit requested on the control socket");
	return json_object();
}

json_t *control_pause(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);

	(void)args;
	if (!vm)
		return NULL;
	if (vm_pause(vm) < 0) {
		err_set(-ESHUTDOWN, "the VM has stopped and cannot be paused");
		return NULL;
	}
	return json_pack("{s:I}", "pause_us",
			 (json_int_t)(vm_get_status(vm).last_pause_ns / NS_PER_US));
}

/* Whether resuming here could run the guest twice; if so, why not. */
static int refuse_cont(struct control_ctx *ctx, bool force)
{
	enum mig_status s = ctx_migration_status(ctx);

	if (s == MIG_COMPLETED)
		return err_set(
			-EINVAL,
			"the guest has migrated away and runs on the destination; resuming it here would run it twice");
	if (s == MIG_POSTCOPY || s == MIG_POSTCOPY_PAUSED || s == MIG_POSTCOPY_RECOVER)
		return err_set(-EBUSY, "the guest runs on the destination, which is still "
				       "getting its last pages from here");
	if (s == MIG_SETUP || s == MIG_ACTIVE || s == MIG_SWITCHOVER)
		return err_set(
			-EBUSY,
			"a migration is in progress (%s): cancel it first (migrate-cancel); the guest then runs on here",
			mig_status_name(s));
	if (s == MIG_LOST && !force)
		return err_set(
			-EINVAL,
			"post-copy broke after the guest ran on the destination: this memory is the guest as it was at the switch. Make sure it does not run there, then cont with {\"force\": true} to run it from that point");
	if (s == MIG_UNKNOWN && !force)
		return err_set(
			-EINVAL,
			"the migration's outcome is unknown: the guest may run on the destination. Fence the destination first (ferry migrate-resolve does, or make sure no ferry runs it there), then cont with {\"force\": true}");
	return 0;
}

json_t *control_resume(struct control_ctx *ctx, json_t *args)
{
	static const char *const keys[] = { "force", NULL };
	struct vm *vm = ctx_vm(ctx);
	json_t *force = json_object_get(args, "force");

	if (!vm || control_only(args, "cont", keys) < 0)
		return NULL;
	if (force && !json_is_boolean(force)) {
		err_set(-EINVAL, "force must be true or false");
		return NULL;
	}
	if (refuse_cont(ctx, json_is_true(force)) < 0)
		return NULL;
	if (ctx_migration_status(ctx) == MIG_UNKNOWN)
		mig_source_settle(
			ctx->migration,
			"the outcome was unknown; the operator resumed the guest here (cont with force)");
	vm_resume(vm);
	return json_object();
}

static bool poll_guest_check(struct control_ctx *ctx, struct control_later *l, json_t **result)
{
	struct vm *vm = ctx->vm;

	if (guest_check_done(vm, &l->check)) {
		*result = json_pack(
			"{s:s,s:I,s:I,s:I}", "result", l->check.errors ? "mismatch" : "ok",
			"errors", (json_int_t)l->check.errors, "pages", (json_int_t)l->check.pages,
			"ms", (json_int_t)((time_now_ns() - l->start_ns) / NS_PER_MS));
		return true;
	}
	if (time_now_ns() > l->deadline_ns || vm_get_status(vm).state != VM_RUNNING) {
		err_set(-ETIMEDOUT, "the guest did not finish its check (it is %s)",
			vm_state_name(vm_get_status(vm).state));
		*result = NULL;
		return true;
	}
	return false;
}

/* Every vCPU checks each page of its share and reports what it found; the
 * answer comes when all have. */
int control_guest_verify(struct control_ctx *ctx, json_t *args, struct control_later *l)
{
	struct vm *vm = ctx_vm(ctx);
	enum vm_run_state state;

	(void)args;
	if (!vm)
		return -ENODEV;
	state = vm_get_status(vm).state;
	if (state != VM_RUNNING || ctx_migration_status(ctx) == MIG_COMPLETED)
		return err_set(-EINVAL, "the guest can only check itself while running (it is %s)",
			       vm_state_name(state));
	l->poll = poll_guest_check;
	l->start_ns = time_now_ns();
	l->deadline_ns = l->start_ns + CHECK_TIMEOUT_S * NS_PER_S;
	guest_check_start(vm, &l->check);
	return 0;
}
