/* The control commands and the state they act on. */
#ifndef FERRY_CONTROL_COMMANDS_H
#define FERRY_CONTROL_COMMANDS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "migration/migration.h"
#include "migration/recv/dest.h"
#include "vm/guest_status.h"

#define CONTROL_SAMPLES	  5
#define CONTROL_SAMPLE_MS 250

struct vm;
struct mig_source;
struct mig_dest;
struct dirtyrate;
struct tls_creds;

/* What the events sent so far were about (control/events.c). */
struct control_watch {
	struct vm *vm;
	uint64_t pauses, resumes;
	struct mig_source *migration;
	uint32_t trail_seen;
	struct mig_dest *incoming;
	uint32_t incoming_seen;
};

/* What `ferry run` shares with its control socket.
 *
 * Threads: the control thread runs the commands; ferry run's main thread
 * publishes the VM (ctx_set_vm) and its signal thread asks for a stop
 * (ctx_request_stop). Lock order: ctx->lock before a migration's, the
 * destination's and the VM's locks. */
struct control_ctx {
	struct vm *vm; /* NULL while waiting for an incoming migration (ctx_vm) */
	char workload[160];
	struct mig_params params;    /* for the next migrate */
	struct dirtyrate *dirtyrate; /* the current or last dirty-rate measurement */
	double forecast_link_bps;    /* the last query-forecast's link */
	json_t *forecast;	     /* the current or last migration's (control/forecast.c) */
	struct mig_dest *incoming;   /* with ferry run --incoming, for its lifetime */
	/* ferry run --incoming's limits and deadlines, which migrate-incoming
	 * keeps (has_incoming_opts); else the defaults. */
	struct mig_dest_opts incoming_opts;
	bool has_incoming_opts;
	/* ferry run --tls-creds: every incoming migration's (freed by ferry
	 * run once its destinations are closed). */
	struct tls_creds *tls;
	const char *control_path; /* where the control socket is served, if it is */
	uint64_t start_ns;
	/* The guest's write rate over the last second, from samples the server
	 * takes every 250 ms (a ring of CONTROL_SAMPLES). */
	uint64_t sample_ns[CONTROL_SAMPLES];
	uint64_t sample_pages[CONTROL_SAMPLES];
	unsigned samples;
	double dirty_rate_pps;

	pthread_mutex_t lock;	      /* guards migration (its pointer) and the stop request */
	struct mig_source *migration; /* the current or last outgoing migration */
	bool quit;		      /* a stop was asked for */
	char quit_why[128];
	struct mig_dest *next; /* migrate-incoming: the guest left, wait for one here */

	/* Held while a command runs (the control thread) and while ferry run's
	 * main thread replaces the VM (ctx_take_next): no command sees a VM
	 * being freed. Taken before lock. */
	pthread_mutex_t use;
	struct control_watch watch; /* the control thread's */
};

/* A command that takes a while (guest-verify) answers later, without
 * holding up other clients: it fills a control_later, which the server
 * polls until it is done. */
struct control_later {
	bool active;
	/* True once done; then *result is the answer, or NULL with err_msg(). */
	bool (*poll)(struct control_ctx *ctx, struct control_later *l, json_t **result);
	uint64_t start_ns, deadline_ns;
	struct guest_check check;
	pid_t child;	  /* upgrade: the new ferry */
	char binary[256]; /* upgrade: its binary */
};

typedef json_t *(*command_fn)(struct control_ctx *ctx, json_t *args);
typedef int (*command_later_fn)(struct control_ctx *ctx, json_t *args, struct control_later *l);

void ctx_init(struct control_ctx *ctx);
void ctx_destroy(struct control_ctx *ctx);
/* The VM, or NULL (with an error sentence set) while none runs here yet. */
struct vm *ctx_vm(struct control_ctx *ctx);
/* Publish the VM an incoming migration produced; stopped at once if a stop
 * was asked for meanwhile. */
void ctx_set_vm(struct control_ctx *ctx, struct vm *vm);
/* Stop everything (quit, a signal): an outgoing migration is cancelled, an
 * incoming one before COMMIT fails (its source resumes), the VM stops. */
void ctx_request_stop(struct control_ctx *ctx, const char *why);
bool ctx_stopping(struct control_ctx *ctx);
/* ferry run's main thread, once its VM stopped: if migrate-incoming asked
 * for a guest to come here again (and no stop was asked for), free the VM
 * that left (*vm becomes NULL), its migration and the last incoming one,
 * and make the new destination ctx->incoming; true then. */
bool ctx_take_next(struct control_ctx *ctx, struct vm **vm);
/* The outgoing migration's status (MIG_NONE: none). */
enum mig_status ctx_migration_status(struct control_ctx *ctx);

/* Whether args has only the keys listed; else -EINVAL with a sentence
 * naming the one it does not take. */
int control_only(json_t *args, const char *command, const char *const *keys);

/* Migration parameters (control/params.c): every key, by ferry's name;
 * read those present in args over p (0, or -EINVAL with a sentence). */
extern const char *const control_param_keys[];
int control_parse_params(json_t *args, struct mig_params *p);

/* Forecasts (control/forecast.c). A migration's is made from a dirty-rate
 * measurement at most this old. */
#define CONTROL_FORECAST_MAX_AGE_S 600
json_t *control_query_forecast(struct control_ctx *ctx, json_t *args);
/* The forecast of a migration with p, or {"reason": why there is none}. */
json_t *control_migration_forecast(struct control_ctx *ctx, const struct mig_params *p);
/* Rounds as query-migrate and query-forecast give them: round, pages,
 * dirtied, ms, throttle_pct. */
json_t *control_round_log_json(const struct round_record *log, uint32_t rounds);

/* VM commands (control/vm.c). */
json_t *control_query_status(struct control_ctx *ctx, json_t *args);
json_t *control_quit(struct control_ctx *ctx, json_t *args);
json_t *control_pause(struct control_ctx *ctx, json_t *args);
json_t *control_resume(struct control_ctx *ctx, json_t *args);
int control_guest_verify(struct control_ctx *ctx, json_t *args, struct control_later *l);
/* Migration commands (control/migrate.c). */
json_t *control_migrate(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_set_parameters(struct control_ctx *ctx, json_t *args);
json_t *control_query_migrate(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_cancel(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_start_postcopy(struct control_ctx *ctx, json_t *args);
json_t *control_query_migrate_parameters(struct control_ctx *ctx, json_t *args);
/* A migration's id as operators see it: 16 hex digits. */
json_t *control_id_json(uint64_t id);
/* The destination's commands (control/incoming.c). */
json_t *control_migrate_incoming_cancel(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_recover(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_incoming(struct control_ctx *ctx, json_t *args);
int control_migrate_incoming_prealloc(struct control_ctx *ctx, json_t *args,
				      struct control_later *l);
/* The incoming side's state, for query-status. */
json_t *control_incoming_json(struct control_ctx *ctx);
/* Whether a destination's guest has started (COMMIT came), before (in
 * post-copy: long before) its VM is handed to the control socket. */
bool control_incoming_guest_runs(struct control_ctx *ctx);
/* upgrade (control/upgrade.c): a new ferry binary takes the guest over. */
int control_upgrade(struct control_ctx *ctx, json_t *args, struct control_later *l);
/* Dirty-rate commands (control/dirtyrate.c). */
json_t *control_calc_dirty_rate(struct control_ctx *ctx, json_t *args);
json_t *control_query_dirty_rate(struct control_ctx *ctx, json_t *args);

/* QMP's shapes (control/qmp.c): the greeting a client gets on connect, the
 * commands only QMP has, and QMP's names for migration parameters. */
json_t *control_greeting(void);
json_t *control_qmp_capabilities(struct control_ctx *ctx, json_t *args);
json_t *control_query_version(struct control_ctx *ctx, json_t *args);
json_t *control_query_commands(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_set_capabilities(struct control_ctx *ctx, json_t *args);
json_t *control_query_migrate_capabilities(struct control_ctx *ctx, json_t *args);
/* QMP's name for the migration parameter ferry calls ferry, or NULL. */
const char *qmp_param_name(const char *ferry);
/* args with every key under ferry's name (QMP's names translated), or NULL
 * with a sentence when a key is neither in known nor in also (may be NULL),
 * or comes twice. The caller owns the result. */
json_t *qmp_params_in(json_t *args, const char *const *known, const char *const *also);

/* Where events go: emit(arg, name, data), data (may be NULL) consumed. */
struct event_sink {
	void (*emit)(void *arg, const char *name, void *data);
	void *arg;
};

/* QMP's events for what changed since the last call (control/events.c), on
 * the control thread; true while a migration runs (look again soon). */
bool control_events(struct control_ctx *ctx, const struct event_sink *out);

/* Run command name with args (may be NULL). Returns the result object, or
 * NULL: with l->active the answer comes later (poll l), otherwise
 * *err_class and a sentence in err_msg() say why it failed. */
json_t *control_execute(struct control_ctx *ctx, const char *name, json_t *args,
			const char **err_class, struct control_later *l);
/* Update the sampled write rate; call every CONTROL_SAMPLE_MS. */
void control_sample(struct control_ctx *ctx);

#endif
