/* QMP's events from what the VM and the migrations record: STOP and RESUME
 * from the VM's pause and resume counts, MIGRATION from the statuses the
 * outgoing migration, or this destination's, went through (their trails),
 * so that none is missed however quickly one follows another. The control
 * thread looks after every wake-up (every 10 ms while a migration runs). */
#include "control/commands.h"
#include "migration/recv/dest.h"
#include "migration/send/source.h"
#include "vm/vm.h"

/* STOP and RESUME for what the VM did since the last look; a VM that came
 * (an incoming migration's) RESUMEs. */
static void vm_events(const struct event_sink *out, struct control_watch *w, struct vm *vm)
{
	struct vm_status st;

	if (vm != w->vm) {
		w->vm = vm;
		if (!vm)
			return;
		st = vm_get_status(vm);
		w->pauses = st.pauses;
		w->resumes = st.resumes;
		if (st.state == VM_RUNNING)
			out->emit(out->arg, "RESUME", NULL);
		return;
	}
	if (!vm)
		return;
	st = vm_get_status(vm);
	while (w->pauses < st.pauses || w->resumes < st.resumes) {
		bool stop = w->pauses < st.pauses && w->pauses <= w->resumes;

		out->emit(out->arg, stop ? "STOP" : "RESUME", NULL);
		if (stop)
			w->pauses++;
		else
			w->resumes++;
	}
}

static void send_trail(const struct event_sink *out, const enum mig_status *trail, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		out->emit(out->arg, "MIGRATION",
			  json_pack("{s:s}", "status", mig_status_name(trail[i])));
}

static void migration_events(const struct event_sink *out, struct control_watch *w,
			     struct mig_source *m)
{
	enum mig_status trail[MIG_TRAIL];

	if (m != w->migration) {
		w->migration = m;
		w->trail_seen = 0;
	}
	if (m)
		send_trail(out, trail, mig_source_trail(m, &w->trail_seen, trail, MIG_TRAIL));
}

/* This destination's side of its migrations; true while one is under way. */
static bool incoming_events(const struct event_sink *out, struct control_watch *w,
			    struct mig_dest *d)
{
	enum mig_status trail[MIG_TRAIL];
	enum dest_phase phase;

	if (d != w->incoming) {
		w->incoming = d;
		w->incoming_seen = 0;
	}
	if (!d)
		return false;
	send_trail(out, trail, mig_dest_trail(d, &w->incoming_seen, trail, MIG_TRAIL));
	phase = mig_dest_stats(d).phase;
	return phase == DEST_RECEIVING || phase == DEST_LOADED;
}

bool control_events(struct control_ctx *ctx, const struct event_sink *out)
{
	enum mig_status s = ctx_migration_status(ctx);
	bool receiving;

	vm_events(out, &ctx->watch, __atomic_load_n(&ctx->vm, __ATOMIC_ACQUIRE));
	migration_events(out, &ctx->watch, ctx->migration);
	receiving = incoming_events(out, &ctx->watch, ctx->incoming);
	return receiving || (s != MIG_NONE && !mig_status_final(s));
}
