#include "vm/guest_status.h"

#include <stddef.h>

#include "guest/abi.h"
#include "vm/vm.h"

_Static_assert(GUEST_STALL_MIN_US == FERRY_STALL_MIN_US, "the guest's threshold, named once");

static const struct ferry_vcpu_status *slot(const struct vm *vm, unsigned i)
{
	const struct ferry_vcpu_status *st =
		vm_read_ptr(vm, FERRY_STATUS_GPA, FERRY_MAX_VCPUS * sizeof(*st));

	return &st[i];
}

struct guest_vcpu_counters guest_vcpu_counters(const struct vm *vm, unsigned i)
{
	const struct ferry_vcpu_status *st = slot(vm, i);

	return (struct guest_vcpu_counters){ .pages_written = st->pages_written,
					     .passes = st->passes,
					     .verify_errors = st->verify_errors,
					     .work = st->work,
					     .heartbeat_tsc = st->heartbeat_tsc };
}

uint64_t guest_pages_written(const struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += slot(vm, i)->pages_written;
	return n;
}

void guest_check_start(struct vm *vm, struct guest_check *c)
{
	const struct ferry_control *ctl = vm_read_ptr(vm, FERRY_CONTROL_GPA, sizeof(*ctl));

	*c = (struct guest_check){ .request = ctl->sweep_req + 1 };
	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, sweep_req), &c->request,
		 sizeof(c->request));
	vm_wake(vm);
}

bool guest_check_done(const struct vm *vm, struct guest_check *c)
{
	c->errors = c->pages = 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		const struct ferry_vcpu_status *st = slot(vm, i);

		if (st->sweep_done != c->request)
			return false;
		c->errors += st->sweep_errors;
		c->pages += st->sweep_pages;
	}
	return true;
}

static const struct ferry_vcpu_stalls *stalls(const struct vm *vm, unsigned i)
{
	const struct ferry_vcpu_stalls *s =
		vm_read_ptr(vm, FERRY_STALLS_GPA, FERRY_MAX_VCPUS * sizeof(*s));

	return &s[i];
}

static double tsc_ms(const struct vm *vm, uint64_t ticks)
{
	return (double)ticks / (double)vm->tsc_khz;
}

void guest_stalls_reset(struct vm *vm)
{
	const struct ferry_control *ctl = vm_read_ptr(vm, FERRY_CONTROL_GPA, sizeof(*ctl));
	uint64_t epoch = ctl->stall_epoch + 1;

	vm_write(vm, FERRY_CONTROL_GPA + offsetof(struct ferry_control, stall_epoch), &epoch,
		 sizeof(epoch));
}

uint64_t guest_running_beat(const struct vm *vm, unsigned i)
{
	return stalls(vm, i)->last_beat_tsc;
}

/* A vCPU paused inside its beat, between reading the TSC and storing it,
 * stores that reading when it resumes: the stall then starts there, a hair
 * after beat. So the switchover's stall is the first one at or after beat,
 * and it is surely recorded once the vCPU has beaten past beat plus the
 * threshold (a beat stores the stall before the heartbeat that ends it). */
bool guest_stall_since(const struct vm *vm, unsigned i, uint64_t beat, double *ms)
{
	const struct ferry_vcpu_stalls *s = stalls(vm, i);
	uint64_t min_ticks = GUEST_STALL_MIN_US * vm->tsc_khz / 1000;
	uint64_t count, first = UINT64_MAX;

	if (slot(vm, i)->heartbeat_tsc <= beat + min_ticks)
		return false;
	/* x86 keeps loads in order; the volatile reads keep the compiler from
	 * reordering them: the heartbeat, then the count, then the entries. */
	count = s->count;
	*ms = 0;
	for (uint64_t k = count > FERRY_STALL_RING ? count - FERRY_STALL_RING : 0; k < count; k++) {
		const volatile uint64_t *e = s->ring[k % FERRY_STALL_RING];

		if (e[0] >= beat && e[0] < first) {
			first = e[0];
			*ms = tsc_ms(vm, e[1]);
		}
	}
	return true;
}

double guest_vcpu_stall_max_ms(const struct vm *vm, unsigned i)
{
	return tsc_ms(vm, stalls(vm, i)->max_tsc);
}

double guest_stall_max_ms(const struct vm *vm)
{
	uint64_t max = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		max = stalls(vm, i)->max_tsc > max ? stalls(vm, i)->max_tsc : max;
	return tsc_ms(vm, max);
}
