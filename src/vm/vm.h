/* A virtual machine: the KVM VM, its guest RAM, its vCPUs and their
 * lifecycle (start, pause, resume, stop). Knows nothing of migration: others
 * ask it to pause, to save or restore its state (vm/state.h), and for dirty
 * pages (vm/dirty.h). */
#ifndef FERRY_VM_VM_H
#define FERRY_VM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/page.h"
#include "vm/kvm.h"
#include "vm/memory.h"

#define VM_MAX_VCPUS 64
#define VM_MIN_MEM   (16ull << 20)

enum dirty_backend {
	DIRTY_BITMAP,
	DIRTY_RING
};

struct vm_config {
	uint64_t mem_bytes;
	unsigned vcpus;
	enum mem_backend mem_backend;
	enum dirty_backend dirty_backend;
	uint32_t dirty_ring_entries; /* per vCPU, power of two; 0 = default */
	bool prealloc;		     /* populate all guest RAM at creation */
	/* vm_create_shell only keeps the memory's place (mem_reserve): the
	 * caller maps it (mem_fill, mem_adopt) before the VM runs. */
	bool mem_later;
	/* Borrow the front of this memory instead of mapping new (a
	 * destination's, made ready before the source came). */
	const struct guest_mem *lend_from;
};

enum vm_run_state {
	VM_CREATED,
	VM_RUNNING,
	VM_PAUSED,
	VM_STOPPED
};

struct vcpu;
struct dirty;

struct vm {
	struct kvm_host *kvm;
	int fd;
	struct vm_config cfg;
	struct guest_mem mem;
	struct dirty *dirty;
	unsigned nr_vcpus;
	struct vcpu *vcpus[VM_MAX_VCPUS];
	uint64_t tsc_khz;
	uint64_t verify_reports; /* stale pages the guest reported (atomic) */

	/* Taken last: under the control context's, a migration's or the
	 * throttle's locks, never the other way round. */
	pthread_mutex_t lock; /* protects everything below */
	pthread_cond_t cond;  /* signalled on any change below */
	enum vm_run_state state;
	bool pause_req;
	bool stop_req;
	bool held;	   /* vCPU threads started, waiting for vm_release to run */
	unsigned parked;   /* vCPU threads waiting in the pause loop */
	unsigned exited;   /* vCPU threads that have returned */
	uint64_t wake_seq; /* bumped to end every guest sleep early */
	bool failed;	   /* stopped by an error, not by the guest or the user */
	bool shut_down;	   /* a vCPU shut down (a triple fault; atomic) */
	int exit_code;	   /* guest's exit code, when it exited */
	char stop_reason[256];
	uint64_t last_pause_ns; /* latency of the last vm_pause */
	uint64_t pauses, resumes;
};

/* A consistent look at the VM's lifecycle (taken under its lock). */
struct vm_status {
	enum vm_run_state state;
	bool stopped, failed, shut_down;
	int exit_code;
	char stop_reason[256];
	uint64_t last_pause_ns;
	uint64_t pauses, resumes; /* vm_pause and vm_resume calls that paused and resumed it */
};

/* Create a VM as a real x86 platform has it (in-kernel PIC/IOAPIC, PIT), with
 * its RAM and vCPUs; no thread runs yet. Returns 0 or -errno with err_msg(). */
int vm_create(const struct vm_config *cfg, struct vm **out);
/* The same with vCPU 0 only (cfg->vcpus is not looked at): what takes long
 * to create (the VM, its irqchip and PIT, its memory slots, the first vCPU
 * and the host's MSR probe: several ms here), made before a guest's shape
 * is known. vm_add_vcpus makes it n vCPUs (n >= those it has). */
int vm_create_shell(const struct vm_config *cfg, struct vm **out);
int vm_add_vcpus(struct vm *vm, unsigned n);
/* Stop the vCPU threads if running, then free everything. */
void vm_destroy(struct vm *vm);

/* Start one thread per vCPU. */
int vm_start(struct vm *vm);
/* The same, but the threads wait until vm_release lets them run: then
 * starting them costs a wake-up, not creating threads. */
int vm_start_held(struct vm *vm);
void vm_release(struct vm *vm);
/* Park every vCPU outside KVM_RUN and wait until all are parked. Returns 0,
 * or -ESHUTDOWN if the VM has stopped. Latency lands in last_pause_ns. */
int vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* Ask every vCPU thread to return; reason is logged and kept. Idempotent. */
void vm_stop(struct vm *vm, bool failed, int exit_code, const char *reason);
/* Wait until the VM stops or timeout_ms passes (-1: forever). Returns true if stopped. */
bool vm_wait_stopped(struct vm *vm, int timeout_ms);
/* End every guest sleep now, e.g. after writing a request for the guest. */
void vm_wake(struct vm *vm);

/* Copy into guest RAM from the VMM. KVM does not see these writes, so they
 * are marked in the VMM's dirty bitmap. Returns -EFAULT outside RAM. */
int vm_write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len);
/* Host pointer to guest RAM for reading, or NULL outside RAM. */
const void *vm_read_ptr(const struct vm *vm, uint64_t gpa, uint64_t len);

/* Time the vCPU thread spends in the sleep call. Called from vm/port.c. */
void vm_sleep_vcpu(struct vm *vm, uint64_t us);
/* The vCPU whose thread has id tid, or -1 (another thread, or none). */
int vm_vcpu_of_thread(struct vm *vm, int tid);
/* A throttled vCPU's sleep: ns, or less if the VM is to pause or stop.
 * Returns the time slept. */
uint64_t vm_throttle_sleep(struct vm *vm, uint64_t ns);
const char *vm_state_name(enum vm_run_state state);
struct vm_status vm_get_status(struct vm *vm);

#endif
