/* Guest memory a destination makes ready before a source connects: mapped
 * and faulted in (at start-up, or later on a thread of its own when the
 * control socket asks), then lent to each incoming VM. A failed attempt
 * gives it back with the pages it wrote zeroed, so the next one finds it as
 * fresh memory; the VM that stays keeps it. First touch of memory costs
 * 0.3-1.6 s per GiB here, and that is time the source would otherwise wait.
 *
 * Thread-safe: the destination's thread lends and takes back while the
 * control thread asks for memory or looks. Its lock is taken alone. */
#ifndef FERRY_MIGRATION_RECV_READY_MEM_H
#define FERRY_MIGRATION_RECV_READY_MEM_H

#include <stdint.h>

#include "vm/memory.h"

enum ready_state {
	READY_NONE,	 /* nothing asked for */
	READY_PREPARING, /* being mapped and faulted in */
	READY_READY,	 /* waiting for a guest */
	READY_LENT,	 /* an incoming VM uses it */
	READY_KEPT,	 /* the VM that stayed has it */
	READY_FAILED,	 /* preparing failed: why in error */
};

struct ready_info {
	enum ready_state state;
	uint64_t bytes;
	enum mem_backend backend;
	double populate_ms; /* how long faulting it in took */
	char error[256];
};

struct ready_mem;

int ready_mem_create(struct ready_mem **out);
void ready_mem_free(struct ready_mem *r);
/* Map bytes of backend memory and fault it all in, now. Replaces memory
 * prepared before; -EBUSY while lent or being prepared. Returns 0 or
 * -errno with err_msg(). */
int ready_mem_prepare(struct ready_mem *r, uint64_t bytes, enum mem_backend backend);
/* The same on a thread of its own: returns once it has started;
 * ready_mem_info says when it is done. Called from one thread only (the
 * control socket's), which also joins the last one. */
int ready_mem_prepare_async(struct ready_mem *r, uint64_t bytes, enum mem_backend backend);
/* Lend it to a VM of bytes (vm_config.lend_from): 0, or -ENOENT when none
 * is ready that large. */
int ready_mem_lend(struct ready_mem *r, uint64_t bytes, const struct guest_mem **out);
/* The VM it was lent to is gone: zero the pages it wrote (a bitmap of
 * npages; NULL: none) and wait for the next. */
void ready_mem_give_back(struct ready_mem *r, const uint64_t *written, uint64_t npages);
/* The VM it was lent to stays: view (the VM's memory) keeps it for good. */
void ready_mem_keep(struct ready_mem *r, struct guest_mem *view);
/* Memory still ready (not lent, not kept) goes back to the host: the guest
 * came into memory of its own and nothing more will come. */
void ready_mem_release(struct ready_mem *r);
struct ready_info ready_mem_info(struct ready_mem *r);
const char *ready_state_name(enum ready_state s);

#endif
