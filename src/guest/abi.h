/* The ferry guest ABI: guest-physical layout, the parameter page the VMM
 * writes, the status area the guest publishes its counters in, and the port
 * calls. Shared verbatim by the VMM (vm/) and the freestanding guest, so it
 * uses only fixed-width types. docs/guest-abi.md is the prose version.
 *
 * Memory is identity-mapped (guest virtual == guest physical) with 2 MiB
 * pages, user-accessible, and the accessed/dirty bits pre-set so that the
 * CPU never writes the page tables (they never show up as dirty). */
#ifndef FERRY_GUEST_ABI_H
#define FERRY_GUEST_ABI_H

#include <stdint.h>

#include "util/page.h"

/* Guest-physical layout. */
#define FERRY_PARAMS_GPA  0x1000ull /* struct ferry_params, VMM-written */
#define FERRY_CONTROL_GPA 0x2000ull /* struct ferry_control, both write */
#define FERRY_STATUS_GPA  0x3000ull /* struct ferry_vcpu_status[FERRY_MAX_VCPUS] */
#define FERRY_GDT_GPA	  0x5000ull
#define FERRY_TSS_GPA	  0x6000ull  /* TSS + I/O permission bitmap, 3 pages */
#define FERRY_STALLS_GPA  0x9000ull  /* struct ferry_vcpu_stalls[FERRY_MAX_VCPUS] */
#define FERRY_IDT_GPA	  0xb000ull  /* 32 gates to the fault stubs, VMM-written */
#define FERRY_FAULT_STACK_GPA 0xc000ull /* 1 page: the stack a double fault runs on */
#define FERRY_PT_GPA	  0x10000ull /* page tables */
#define FERRY_PT_END	  0x90000ull
#define FERRY_IMAGE_GPA	  0x100000ull /* ELF image is linked here */
/* The guest's exception handlers, FERRY_FAULT_STUB_SIZE bytes a vector from
 * 0 to FERRY_FAULT_VECTORS - 1 (start.S; guest.ld checks the address). */
#define FERRY_FAULT_STUBS_GPA 0x100100ull
#define FERRY_FAULT_STUB_SIZE 16
#define FERRY_FAULT_VECTORS   32
#define FERRY_IMAGE_END	  0x300000ull
#define FERRY_STACKS_GPA  0x300000ull
#define FERRY_STACK_SIZE  0x10000ull  /* per vCPU */
#define FERRY_HEAP_GPA	  0x800000ull /* workload memory starts here */
#define FERRY_MIN_MEM	  (16ull << 20)
#define FERRY_MAX_VCPUS	  64

/* Ports. The console is byte-wide like QEMU's debugcon, so the same image
 * prints under QEMU with -debugcon. The call port takes a call number in eax;
 * arguments and results go through the vCPU's status slot (args[]). */
#define FERRY_PORT_CONSOLE 0xe9
#define FERRY_PORT_CALL	   0xf0

enum ferry_call {
	FERRY_CALL_SLEEP = 1,  /* args[0] = microseconds; may return early */
	FERRY_CALL_EXIT = 2,   /* args[0] = exit code; stops the whole VM */
	FERRY_CALL_VERIFY = 3, /* args[0] = page index, args[1] = expected gen, args[2] = found */
	FERRY_CALL_PANIC = 4,  /* args[0] = reason code; stops the VM with an error */
	/* The CPU raised an exception: vector in rsi, error code in rdx, and
	 * where it happened in rcx (rip) and r8 (rsp); stops the VM with an
	 * error. In registers, not args[]: the guest may be too broken to
	 * find its status slot. */
	FERRY_CALL_FAULT = 5,
};

#define FERRY_PARAMS_MAGIC   0x5041524d59525245ull /* "ERRYMRAP" */
#define FERRY_PARAMS_VERSION 3

enum ferry_workload {
	FERRY_WL_IDLE = 1,
	FERRY_WL_DIRTY = 2,
	FERRY_WL_TOUCH = 3
};
enum ferry_pattern {
	FERRY_PAT_RANDOM = 0,
	FERRY_PAT_SEQUENTIAL = 1,
	FERRY_PAT_HOTSET = 2
};
enum ferry_write {
	FERRY_WRITE_BYTE = 0,
	FERRY_WRITE_WORD = 1,
	FERRY_WRITE_PAGE = 2
};
enum ferry_data {
	FERRY_DATA_ZERO = 0,
	FERRY_DATA_COUNTER = 1,
	FERRY_DATA_TEXT = 2,
	FERRY_DATA_RANDOM = 3
};

/* Workload arguments. wss_pages pages of working set follow the generation
 * table at the heap start. rate_pps = 0 means as fast as possible. */
struct ferry_workload_args {
	uint32_t kind;	  /* enum ferry_workload */
	uint32_t pattern; /* enum ferry_pattern */
	uint32_t write;	  /* enum ferry_write */
	uint32_t data;	  /* enum ferry_data */
	uint64_t wss_pages;
	uint64_t rate_pps;     /* whole VM; split evenly over vCPUs */
	uint32_t hot_pct;      /* hot-set: share of the working set that is hot */
	uint32_t hot_hits_pct; /* hot-set: share of writes that go to the hot set */
	uint32_t spin;	       /* 1: busy-wait instead of the sleep call */
	uint32_t check;	       /* 1: self-check (generation numbers) */
	uint64_t seed;
	uint32_t dirtiers; /* dirty: vCPUs 0..dirtiers-1 dirty, the rest compute (0: all) */
	uint32_t reserved;
};

struct ferry_params {
	uint64_t magic;
	uint32_t version;
	uint32_t vcpus;
	uint64_t mem_bytes;
	uint64_t tsc_khz;
	struct ferry_workload_args wl;
};

/* Requests from the VMM to the guest. The VMM bumps a *_req counter and
 * wakes sleeping vCPUs; each vCPU that serves it copies the counter to the
 * matching *_done field of its status slot. */
#define FERRY_TOUCH_MAX 256
struct ferry_control {
	volatile uint64_t sweep_req; /* full self-check sweep, each vCPU over its share */
	volatile uint64_t touch_req; /* TOUCH workload: vCPU 0 writes touch_list once */
	volatile uint64_t touch_count;
	volatile uint64_t touch_list[FERRY_TOUCH_MAX]; /* page indexes into the working set */
	volatile uint64_t stall_epoch; /* bumped: each vCPU starts its longest stall anew */
};

/* One per vCPU, 128 bytes; the guest writes, the VMM reads without exits. */
struct ferry_vcpu_status {
	volatile uint64_t pages_written; /* page writes since start */
	volatile uint64_t passes;	 /* passes over the vCPU's share of the working set */
	volatile uint64_t verify_errors; /* stale or torn pages seen on read */
	volatile uint64_t heartbeat_tsc; /* last rdtsc of the main loop */
	volatile uint64_t args[4];	 /* port call arguments */
	volatile uint64_t filled;	 /* 1 once the initial fill of its share is done */
	volatile uint64_t sweep_done;	 /* last sweep_req served */
	volatile uint64_t sweep_errors;	 /* errors found by that sweep */
	volatile uint64_t sweep_pages;	 /* pages it checked */
	volatile uint64_t touch_done;	 /* last touch_req served */
	volatile uint64_t work;		 /* compute loops done (a vCPU that does not dirty) */
	volatile uint64_t reserved[2];
};

_Static_assert(sizeof(struct ferry_vcpu_status) == 128, "status slot is 128 bytes");
_Static_assert(sizeof(struct ferry_control) <= FERRY_PAGE_SIZE, "control fits a page");
_Static_assert(FERRY_MAX_VCPUS * sizeof(struct ferry_vcpu_status) == 2 * FERRY_PAGE_SIZE,
	       "status area is two pages");

/* One per vCPU, 128 bytes: the stalls the guest felt. A stall is a gap of
 * more than FERRY_STALL_MIN_US between two heartbeats of a vCPU that meant
 * to run: paused, throttled, descheduled by the host, waiting for a page. A
 * sleep the guest asks for is none: last_beat_tsc is 0 during one, so that a
 * vCPU paused while asleep felt nothing. The guest's own work between two
 * beats stays well below the threshold. Times are the guest's TSC. */
#define FERRY_STALL_MIN_US 1000
#define FERRY_STALL_RING   6
struct ferry_vcpu_stalls {
	volatile uint64_t last_beat_tsc; /* 0 while asleep on purpose */
	volatile uint64_t epoch;	 /* the control page's stall_epoch when max began */
	volatile uint64_t max_tsc;	 /* the longest stall since */
	volatile uint64_t count;	 /* stalls since start; the last ones are in ring */
	volatile uint64_t ring[FERRY_STALL_RING][2]; /* [count % RING]: start TSC, length */
};

_Static_assert(sizeof(struct ferry_vcpu_stalls) == 128, "stall slot is 128 bytes");
_Static_assert(__builtin_offsetof(struct ferry_control, stall_epoch) == 2072,
	       "bench/qemu.py writes stall_epoch there");
_Static_assert(FERRY_STALLS_GPA + FERRY_MAX_VCPUS * sizeof(struct ferry_vcpu_stalls) <= FERRY_PT_GPA,
	       "stall area fits below the page tables");

/* Self-check page header, at the start of every working-set page the guest
 * writes with checking on. gen matches the guest's generation table entry. */
struct ferry_page_header {
	uint32_t gen;
	uint32_t tag;	     /* ferry_page_tag(page index) */
	uint64_t last_write; /* offset << 32 | value of the last small write */
};

#define FERRY_PAGE_HEADER_SIZE 16
_Static_assert(sizeof(struct ferry_page_header) == FERRY_PAGE_HEADER_SIZE, "header size");

/* The working set follows the generation table (4 bytes per page) at the
 * heap start. */
static inline uint64_t ferry_ws_gpa(uint64_t wss_pages)
{
	uint64_t table_bytes = (wss_pages * 4 + FERRY_PAGE_SIZE - 1) & ~(FERRY_PAGE_SIZE - 1);

	return FERRY_HEAP_GPA + table_bytes;
}

static inline uint32_t ferry_page_tag(uint64_t index)
{
	return (uint32_t)(index * 0x9e3779b1u) ^ 0xfe77e7a6u;
}

#endif
