/* Guest runtime: port I/O, time, ferry port calls. Freestanding, ring 3. */
#ifndef FERRY_GUEST_RUNTIME_H
#define FERRY_GUEST_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "guest/abi.h"

static inline void rt_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void rt_outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void rt_pause(void)
{
	__asm__ volatile("pause");
}

static inline const struct ferry_params *rt_params(void)
{
	return (const struct ferry_params *)FERRY_PARAMS_GPA;
}

static inline struct ferry_control *rt_control(void)
{
	return (struct ferry_control *)FERRY_CONTROL_GPA;
}

static inline struct ferry_vcpu_status *rt_status(uint32_t cpu)
{
	return (struct ferry_vcpu_status *)FERRY_STATUS_GPA + cpu;
}

static inline struct ferry_vcpu_stalls *rt_stalls(uint32_t cpu)
{
	return (struct ferry_vcpu_stalls *)FERRY_STALLS_GPA + cpu;
}

/* A heartbeat of vCPU cpu's main loop: heartbeat_tsc, and a stall recorded
 * if the last beat is too long ago (abi.h, struct ferry_vcpu_stalls). */
void rt_beat(uint32_t cpu);
/* The next beat starts afresh: the time since this one was meant (a sleep,
 * a full sweep of memory), not a stall. */
static inline void rt_beat_restart(uint32_t cpu)
{
	rt_stalls(cpu)->last_beat_tsc = 0;
}

void rt_puts(const char *s);
/* Block in the VMM for up to us microseconds (early on wake-up), or spin if
 * the workload asked for it. */
void rt_sleep_us(uint32_t cpu, uint64_t us);
void rt_report_stale(uint32_t cpu, uint64_t index, uint64_t expected, uint64_t found);
__attribute__((noreturn)) void rt_exit(uint32_t cpu, uint64_t code);
__attribute__((noreturn)) void rt_panic(uint32_t cpu, uint64_t reason);
uint64_t rt_tsc_per_us(void);

#endif
