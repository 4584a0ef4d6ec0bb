#include "control/commands.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "migration/source.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/vm.h"
#include "vm/workload.h"

#define SWEEP_TIMEOUT_S 120

struct vm *ctx_vm(struct control_ctx *ctx)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);

	if (!vm)
		err_set(-ENODEV, "no VM runs here yet: this ferry waits for an incoming migration");
	return vm;
}

void ctx_set_vm(struct control_ctx *ctx, struct vm *vm)
{
	__atomic_store_n(&ctx->vm, vm, __ATOMIC_RELEASE);
}

bool ctx_migrated(struct control_ctx *ctx)
{
	return ctx->migration && mig_source_stats(ctx->migration).status == MIG_COMPLETED;
}

static const struct ferry_vcpu_status *vcpu_status(struct vm *vm, unsigned i)
{
	const struct ferry_vcpu_status *st =
		vm_read_ptr(vm, FERRY_STATUS_GPA, FERRY_MAX_VCPUS * sizeof(*st));

	return &st[i];
}

static uint64_t pages_written(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += vcpu_status(vm, i)->pages_written;
	return n;
}

void control_sample(struct control_ctx *ctx)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	uint64_t now = time_now_ns(), pages;
	unsigned slot = ctx->samples % CONTROL_SAMPLES, oldest;

	if (!vm)
		return;
	pages = pages_written(vm);
	ctx->sample_ns[slot] = now;
	ctx->sample_pages[slot] = pages;
	/* The oldest sample is the one the next will overwrite, once the ring is full. */
	oldest = ++ctx->samples >= CONTROL_SAMPLES ? ctx->samples % CONTROL_SAMPLES : 0;
	if (now > ctx->sample_ns[oldest])
		ctx->dirty_rate_pps = (double)(pages - ctx->sample_pages[oldest]) * 1e9 /
				      (double)(now - ctx->sample_ns[oldest]);
}

static json_t *guest_counters(struct vm *vm)
{
	json_t *per_vcpu = json_array();
	uint64_t written = 0, passes = 0, errors = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		const struct ferry_vcpu_status *st = vcpu_status(vm, i);

		written += st->pages_written;
		passes += st->passes;
		errors += st->verify_errors;
		json_array_append_new(per_vcpu, json_pack("{s:I,s:I,s:I,s:I}", "pages_written",
							  (json_int_t)st->pages_written, "passes",
							  (json_int_t)st->passes, "verify_errors",
							  (json_int_t)st->verify_errors, "work",
							  (json_int_t)st->work));
	}
	return json_pack("{s:I,s:I,s:I,s:o}", "pages_written", (json_int_t)written, "passes",
			 (json_int_t)passes, "verify_errors", (json_int_t)errors, "per_vcpu",
			 per_vcpu);
}

static json_t *incoming_status(struct control_ctx *ctx)
{
	const struct mig_dest_stats *in = &ctx->incoming;

	return json_pack("{s:s,s:{s:s,s:I,s:I,s:i,s:s}}", "status", "incoming", "incoming",
			 "migration", mig_status_name(in->status), "pages_received",
			 (json_int_t)in->pages_received, "bytes_received",
			 (json_int_t)in->bytes_received, "rounds", (int)in->rounds, "last_failure",
			 in->reason);
}

static const char *run_state(struct control_ctx *ctx, struct vm *vm)
{
	return ctx_migrated(ctx) ? "postmigrate" : vm_state_name(vm->state);
}

static json_t *cmd_query_status(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	char workload[160];
	json_t *r;

	(void)args;
	if (!vm)
		return incoming_status(ctx);
	workload_describe(&ctx->workload, workload, sizeof(workload));
	pthread_mutex_lock(&vm->lock);
	r = json_pack("{s:s,s:i,s:I,s:s,s:s,s:s,s:f,s:I,s:I}", "status", run_state(ctx, vm),
		      "vcpus", (int)vm->nr_vcpus, "memory_bytes", (json_int_t)vm->mem.size,
		      "mem_backend", mem_backend_name(vm->mem.backend), "dirty_backend",
		      dirty_backend_name(vm->dirty), "workload", workload, "dirty_rate_pps",
		      ctx->dirty_rate_pps, "uptime_ms",
		      (json_int_t)((time_now_ns() - ctx->start_ns) / NS_PER_MS), "last_pause_us",
		      (json_int_t)(vm->last_pause_ns / NS_PER_US));
	if (vm->stop_req) {
		json_object_set_new(r, "stop_reason", json_string(vm->stop_reason));
		json_object_set_new(r, "exit_code", json_integer(vm->exit_code));
		json_object_set_new(r, "failed", json_boolean(vm->failed));
	}
	pthread_mutex_unlock(&vm->lock);
	json_object_set_new(r, "dirty_rate_bps",
			    json_integer((json_int_t)(ctx->dirty_rate_pps * FERRY_PAGE_SIZE)));
	json_object_set_new(r, "guest", guest_counters(vm));
	json_object_set_new(r, "guest_stale_reports", json_integer((json_int_t)vm->verify_reports));
	return r;
}

static json_t *cmd_quit(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);

	(void)args;
	if (ctx->migration)
		mig_source_cancel(ctx->migration);
	if (vm)
		vm_stop(vm, false, 0, "quit requested on the control socket");
	else
		ctx->quit = 1;
	return json_object();
}

static json_t *cmd_stop(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);

	(void)args;
	if (!vm)
		return NULL;
	if (vm_pause(vm) < 0) {
		err_set(-ESHUTDOWN, "the VM has stopped and cannot be paused");
		return NULL;
	}
	return json_pack("{s:I}", "pause_us", (json_int_t)(vm->last_pause_ns / NS_PER_US));
}

static json_t *cmd_cont(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);

	(void)args;
	if (!vm)
		return NULL;
	if (ctx_migrated(ctx)) {
		err_set(-EINVAL,
			"the guest has migrated away and runs on the destination; resuming it here would run it twice");
		return NULL;
	}
	vm_resume(vm);
	return json_object();
}

/* Every vCPU checks each page of its share and reports what it found. The
 * request goes through guest RAM (vm_write, so it is dirty-tracked). */
static json_t *cmd_guest_verify(struct control_ctx *ctx, json_t *args)
{
	struct vm *vm = ctx_vm(ctx);
	const struct ferry_control *c;
	uint64_t req, errors = 0, pages = 0;
	uint64_t start = time_now_ns(), deadline = start + SWEEP_TIMEOUT_S * NS_PER_S;

	(void)args;
	if (!vm)
		return NULL;
	c = vm_read_ptr(vm, FERRY_CONTROL_GPA, sizeof(*c));
	req = c->sweep_req + 1;
	if (vm->state != VM_RUNNING || ctx_migrated(ctx)) {
		err_set(-EINVAL, "the guest can only check itself while running (it is %s)",
			vm_state_name(vm->state));
		return NULL;
	}
	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, sweep_req), &req, 8);
	vm_wake(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		while (vcpu_status(vm, i)->sweep_done != req) {
			if (time_now_ns() > deadline || vm->state != VM_RUNNING) {
				err_set(-ETIMEDOUT, "the guest did not finish its check (vCPU %u)",
					i);
				return NULL;
			}
			time_sleep_ns(NS_PER_MS);
		}
		errors += vcpu_status(vm, i)->sweep_errors;
		pages += vcpu_status(vm, i)->sweep_pages;
	}
	return json_pack("{s:s,s:I,s:I,s:I}", "result", errors ? "mismatch" : "ok", "errors",
			 (json_int_t)errors, "pages", (json_int_t)pages, "ms",
			 (json_int_t)((time_now_ns() - start) / NS_PER_MS));
}

static const struct {
	const char *name;
	command_fn fn;
} commands[] = {
	{ "query-status", cmd_query_status },
	{ "quit", cmd_quit },
	{ "stop", cmd_stop },
	{ "cont", cmd_cont },
	{ "guest-verify", cmd_guest_verify },
	{ "migrate", control_migrate },
	{ "migrate-set-parameters", control_migrate_set_parameters },
	{ "query-migrate", control_query_migrate },
	{ "migrate-cancel", control_migrate_cancel },
	{ "calc-dirty-rate", control_calc_dirty_rate },
	{ "query-dirty-rate", control_query_dirty_rate },
};

json_t *control_execute(struct control_ctx *ctx, const char *name, json_t *args,
			const char **err_class)
{
	char known[512];
	size_t at = 0;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return commands[i].fn(ctx, args);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && at < sizeof(known); i++)
		at += (size_t)snprintf(known + at, sizeof(known) - at, "%s%s", i ? ", " : "",
				       commands[i].name);
	*err_class = "CommandNotFound";
	err_set(-ENOENT, "unknown command '%s' (known: %s)", name, known);
	return NULL;
}
