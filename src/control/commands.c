#include "control/commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migration/plan/dirtyrate.h"
#include "migration/recv/dest.h"
#include "migration/send/source.h"
#include "util/error.h"
#include "util/time.h"
#include "vm/guest_status.h"
#include "vm/vm.h"

void ctx_init(struct control_ctx *ctx)
{
	*ctx = (struct control_ctx){ .start_ns = time_now_ns() };
	mig_params_default(&ctx->params);
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->use, NULL);
}

void ctx_destroy(struct control_ctx *ctx)
{
	if (ctx->migration)
		mig_source_cancel(ctx->migration);
	mig_source_free(ctx->migration);
	dirtyrate_free(ctx->dirtyrate);
	json_decref(ctx->forecast);
	mig_dest_close(ctx->next);
	pthread_mutex_destroy(&ctx->lock);
	pthread_mutex_destroy(&ctx->use);
}

struct vm *ctx_vm(struct control_ctx *ctx)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);

	if (!vm)
		err_set(-ENODEV, "no VM runs here yet: this ferry waits for an incoming migration");
	return vm;
}

void ctx_set_vm(struct control_ctx *ctx, struct vm *vm)
{
	pthread_mutex_lock(&ctx->lock);
	__atomic_store_n(&ctx->vm, vm, __ATOMIC_RELEASE);
	if (ctx->quit && vm)
		vm_stop(vm, false, 0, ctx->quit_why);
	pthread_mutex_unlock(&ctx->lock);
}

void ctx_request_stop(struct control_ctx *ctx, const char *why)
{
	struct vm *vm;

	pthread_mutex_lock(&ctx->lock);
	if (!ctx->quit)
		snprintf(ctx->quit_why, sizeof(ctx->quit_why), "%s", why);
	ctx->quit = true;
	if (ctx->migration)
		mig_source_cancel(ctx->migration);
	if (ctx->incoming)
		mig_dest_stop(ctx->incoming, why); /* after COMMIT: the VM stops below */
	if (ctx->next)
		mig_dest_stop(ctx->next, why);
	vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	if (vm)
		vm_stop(vm, false, 0, why);
	pthread_mutex_unlock(&ctx->lock);
}

bool ctx_take_next(struct control_ctx *ctx, struct vm **vm)
{
	struct mig_source *gone;
	struct mig_dest *last;

	pthread_mutex_lock(&ctx->use);
	pthread_mutex_lock(&ctx->lock);
	if (!ctx->next || ctx->quit) {
		pthread_mutex_unlock(&ctx->lock);
		pthread_mutex_unlock(&ctx->use);
		return false;
	}
	__atomic_store_n(&ctx->vm, NULL, __ATOMIC_RELEASE);
	gone = ctx->migration;
	ctx->migration = NULL;
	last = ctx->incoming;
	ctx->incoming = ctx->next;
	ctx->next = NULL;
	pthread_mutex_unlock(&ctx->lock);
	mig_source_free(gone); /* it ended: its thread is over */
	vm_destroy(*vm);
	*vm = NULL;
	mig_dest_close(last);
	pthread_mutex_unlock(&ctx->use);
	return true;
}

bool ctx_stopping(struct control_ctx *ctx)
{
	bool q;

	pthread_mutex_lock(&ctx->lock);
	q = ctx->quit;
	pthread_mutex_unlock(&ctx->lock);
	return q;
}

enum mig_status ctx_migration_status(struct control_ctx *ctx)
{
	return ctx->migration ? mig_source_stats(ctx->migration).status : MIG_NONE;
}

void control_sample(struct control_ctx *ctx)
{
	struct vm *vm = __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE);
	uint64_t now = time_now_ns(), pages;
	unsigned slot = ctx->samples % CONTROL_SAMPLES, oldest;

	if (!vm)
		return;
	pages = guest_pages_written(vm);
	ctx->sample_ns[slot] = now;
	ctx->sample_pages[slot] = pages;
	/* The oldest sample is the one the next will overwrite, once the ring is full. */
	oldest = ++ctx->samples >= CONTROL_SAMPLES ? ctx->samples % CONTROL_SAMPLES : 0;
	if (now > ctx->sample_ns[oldest])
		ctx->dirty_rate_pps = (double)(pages - ctx->sample_pages[oldest]) * 1e9 /
				      (double)(now - ctx->sample_ns[oldest]);
}

/* no_args: the command takes no argument, and refuses any. */
static const struct {
	const char *name;
	command_fn fn;
	command_later_fn later; /* or this, for one that answers later */
	bool no_args;
} commands[] = {
	{ "query-status", control_query_status, NULL, true },
	{ "quit", control_quit, NULL, true },
	{ "stop", control_pause, NULL, true },
	{ "cont", control_resume },
	{ "guest-verify", NULL, control_guest_verify, true },
	{ "migrate", control_migrate },
	{ "migrate-set-parameters", control_migrate_set_parameters },
	{ "query-migrate", control_query_migrate, NULL, true },
	{ "migrate-cancel", control_migrate_cancel, NULL, true },
	{ "migrate-start-postcopy", control_migrate_start_postcopy, NULL, true },
	{ "migrate-incoming-cancel", control_migrate_incoming_cancel, NULL, true },
	{ "migrate-recover", control_migrate_recover },
	{ "migrate-incoming", control_migrate_incoming },
	{ "migrate-incoming-prealloc", NULL, control_migrate_incoming_prealloc },
	{ "upgrade", NULL, control_upgrade },
	{ "calc-dirty-rate", control_calc_dirty_rate },
	{ "query-dirty-rate", control_query_dirty_rate, NULL, true },
	{ "query-forecast", control_query_forecast },
	{ "qmp_capabilities", control_qmp_capabilities },
	{ "query-version", control_query_version, NULL, true },
	{ "query-commands", control_query_commands, NULL, true },
	{ "query-migrate-parameters", control_query_migrate_parameters, NULL, true },
	{ "migrate-set-capabilities", control_migrate_set_capabilities },
	{ "query-migrate-capabilities", control_query_migrate_capabilities, NULL, true },
	{ "migrate_cancel", control_migrate_cancel, NULL, true }, /* QMP's older name */
};

int control_only(json_t *args, const char *command, const char *const *keys)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v)
	{
		size_t i = 0;

		while (keys[i] && strcmp(keys[i], key))
			i++;
		if (!keys[i])
			return err_set(-EINVAL, "%s takes no argument '%s' (docs/control.md)",
				       command, key);
	}
	return 0;
}

json_t *control_query_commands(struct control_ctx *ctx, json_t *args)
{
	json_t *list = json_array();

	(void)ctx;
	(void)args;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		json_array_append_new(list, json_pack("{s:s}", "name", commands[i].name));
	return list;
}

json_t *control_execute(struct control_ctx *ctx, const char *name, json_t *args,
			const char **err_class, struct control_later *l)
{
	char known[1024];
	size_t at = 0;

	l->active = false;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name))
			continue;
		if (commands[i].no_args && json_object_size(args)) {
			err_set(-EINVAL, "%s takes no arguments", name);
			return NULL;
		}
		if (commands[i].fn)
			return commands[i].fn(ctx, args);
		if (commands[i].later(ctx, args, l) == 0)
			l->active = true;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && at < sizeof(known); i++)
		at += (size_t)snprintf(known + at, sizeof(known) - at, "%s%s", i ? ", " : "",
				       commands[i].name);
	*err_class = "CommandNotFound";
	err_set(-ENOENT, "unknown command '%s' (known: %s)", name, known);
	return NULL;
}
