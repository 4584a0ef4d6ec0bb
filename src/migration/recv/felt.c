#include "migration/recv/felt.h"

#include "util/time.h"
#include "vm/guest_status.h"

void felt_before(const struct vm *vm, uint64_t beats[VM_MAX_VCPUS])
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		beats[i] = guest_running_beat(vm, i);
}

struct felt felt_after(const struct vm *vm, const uint64_t beats[VM_MAX_VCPUS], int timeout_ms)
{
	uint64_t deadline = time_now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	bool done[VM_MAX_VCPUS] = { false };
	struct felt f = { 0 };
	unsigned waiting;

	do {
		waiting = 0;
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			double ms;

			if (!beats[i] || done[i])
				continue;
			if (!guest_stall_since(vm, i, beats[i], &ms)) {
				waiting++;
				continue;
			}
			done[i] = f.known = true;
			f.gap_ms = ms > f.gap_ms ? ms : f.gap_ms;
		}
		if (waiting)
			time_sleep_ns(200 * NS_PER_US);
	} while (waiting && time_now_ns() < deadline);
	f.stall_max_ms = guest_stall_max_ms(vm);
	f.stall_known = true;
	return f;
}
