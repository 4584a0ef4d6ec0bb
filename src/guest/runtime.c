#include "guest/runtime.h"

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void rt_puts(const char *s)
{
	while (*s)
		rt_outb(FERRY_PORT_CONSOLE, (uint8_t)*s++);
}

uint64_t rt_tsc_per_us(void)
{
	uint64_t khz = rt_params()->tsc_khz;

	return khz >= 1000 ? khz / 1000 : 1;
}

static void call(uint32_t cpu, enum ferry_call nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct ferry_vcpu_status *st = rt_status(cpu);

	st->args[0] = a0;
	st->args[1] = a1;
	st->args[2] = a2;
	rt_outl(FERRY_PORT_CALL, nr);
}

void rt_beat(uint32_t cpu)
{
	struct ferry_vcpu_stalls *s = rt_stalls(cpu);
	uint64_t now = rt_rdtsc(), last = s->last_beat_tsc, epoch = rt_control()->stall_epoch;

	if (s->epoch != epoch) {
		s->max_tsc = 0;
		s->epoch = epoch;
	}
	if (last && now - last > FERRY_STALL_MIN_US * rt_tsc_per_us()) {
		volatile uint64_t *e = s->ring[s->count % FERRY_STALL_RING];

		e[0] = last;
		e[1] = now - last;
		s->count++; /* after the entry: a reader that sees the count sees it */
		if (now - last > s->max_tsc)
			s->max_tsc = now - last;
	}
	s->last_beat_tsc = now;
	rt_status(cpu)->heartbeat_tsc = now;
}

/* Spinning, the vCPU beats all along: a pause then is a stall it feels. */
void rt_sleep_us(uint32_t cpu, uint64_t us)
{
	if (rt_params()->wl.spin) {
		uint64_t end = rt_rdtsc() + us * rt_tsc_per_us();

		while (rt_rdtsc() < end) {
			rt_beat(cpu);
			rt_pause();
		}
		return;
	}
	rt_beat_restart(cpu);
	call(cpu, FERRY_CALL_SLEEP, us, 0, 0);
}

void rt_report_stale(uint32_t cpu, uint64_t index, uint64_t expected, uint64_t found)
{
	call(cpu, FERRY_CALL_VERIFY, index, expected, found);
}

void rt_exit(uint32_t cpu, uint64_t code)
{
	for (;;)
		call(cpu, FERRY_CALL_EXIT, code, 0, 0);
}

void rt_panic(uint32_t cpu, uint64_t reason)
{
	for (;;)
		call(cpu, FERRY_CALL_PANIC, reason, 0, 0);
}
