/* The control commands and the state they act on. */
#ifndef FERRY_CONTROL_COMMANDS_H
#define FERRY_CONTROL_COMMANDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest/abi.h"
#include "migration/dest.h"
#include "migration/migration.h"

#define CONTROL_SAMPLES	  5
#define CONTROL_SAMPLE_MS 250

struct vm;
struct mig_source;
struct dirtyrate;

/* What `ferry run` shares with its control socket. */
struct control_ctx {
	struct vm *vm; /* NULL while waiting for an incoming migration (use ctx_vm) */
	struct ferry_workload_args workload;
	struct mig_params params;     /* for the next migrate */
	struct mig_source *migration; /* the current or last outgoing migration */
	struct dirtyrate *dirtyrate;  /* the current or last dirty-rate measurement */
	struct mig_dest_stats incoming;
	int incoming_fd;   /* listening for an incoming migration */
	volatile int quit; /* quit arrived before any VM existed */
	uint64_t start_ns;
	/* The guest's write rate over the last second, from samples the server
	 * takes every 250 ms (a ring of CONTROL_SAMPLES). */
	uint64_t sample_ns[CONTROL_SAMPLES];
	uint64_t sample_pages[CONTROL_SAMPLES];
	unsigned samples;
	double dirty_rate_pps;
};

typedef json_t *(*command_fn)(struct control_ctx *ctx, json_t *args);

/* The VM, or NULL (with an error sentence set) while none runs here yet. */
struct vm *ctx_vm(struct control_ctx *ctx);
/* Publish the VM an incoming migration produced. */
void ctx_set_vm(struct control_ctx *ctx, struct vm *vm);
/* True once an outgoing migration completed: the guest runs elsewhere. */
bool ctx_migrated(struct control_ctx *ctx);

/* Migration commands (control/migrate.c). */
json_t *control_migrate(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_set_parameters(struct control_ctx *ctx, json_t *args);
json_t *control_query_migrate(struct control_ctx *ctx, json_t *args);
json_t *control_migrate_cancel(struct control_ctx *ctx, json_t *args);
/* Dirty-rate commands (control/dirtyrate.c). */
json_t *control_calc_dirty_rate(struct control_ctx *ctx, json_t *args);
json_t *control_query_dirty_rate(struct control_ctx *ctx, json_t *args);

/* Run command name with args (may be NULL). Returns the result object, or
 * NULL with *err_class and a sentence in err_msg(). */
json_t *control_execute(struct control_ctx *ctx, const char *name, json_t *args,
			const char **err_class);
/* Update the sampled write rate; call every CONTROL_SAMPLE_MS. */
void control_sample(struct control_ctx *ctx);

#endif
