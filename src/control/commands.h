/* The control commands and the state they act on. */
#ifndef FERRY_CONTROL_COMMANDS_H
#define FERRY_CONTROL_COMMANDS_H

#include <jansson.h>
#include <stdint.h>

#include "guest/abi.h"

struct vm;

/* What `ferry run` shares with its control socket. */
struct control_ctx {
	struct vm *vm;
	struct ferry_workload_args workload;
	uint64_t start_ns;
	/* The guest's write rate, sampled about once a second by the server. */
	uint64_t sample_ns;
	uint64_t sample_pages;
	double dirty_rate_pps;
};

/* Run command name with args (may be NULL). Returns the result object, or
 * NULL with *err_class and a sentence in err_msg(). */
json_t *control_execute(struct control_ctx *ctx, const char *name, json_t *args,
			const char **err_class);
/* Update the sampled dirty rate; call about once a second. */
void control_sample(struct control_ctx *ctx);

#endif
