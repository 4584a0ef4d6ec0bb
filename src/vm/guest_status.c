#include "vm/guest_status.h"

#include <stddef.h>

#include "guest/abi.h"
#include "vm/vm.h"

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
