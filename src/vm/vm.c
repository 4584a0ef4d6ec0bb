#include "vm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/vcpu.h"

/* Where Intel VMX puts its real-mode TSS: three pages just below 4 GiB, far
 * above any RAM ferry gives a guest below the 3 GiB hole it does not use. */
#define VMX_TSS_ADDR 0xfffbd000ul

const char *vm_state_name(enum vm_run_state state)
{
	static const char *const names[] = { "created", "running", "paused", "stopped" };

	return names[state];
}

static int check_config(const struct vm_config *cfg)
{
	if (cfg->mem_bytes < VM_MIN_MEM || cfg->mem_bytes % (2u << 20))
		return err_set(-EINVAL,
			       "guest memory must be a multiple of 2 MiB and at least %llu MiB",
			       VM_MIN_MEM >> 20);
	return 0;
}

/* The in-kernel irqchip and PIT make the VM look like a PC; the ring-3 guest
 * does not use them, but their state is part of the machine and migrates. */
static int create_platform(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, VMX_TSS_ADDR) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s (only VMX needs it)", strerror(errno));
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_set(-errno, "cannot create the in-kernel irqchip: %s", strerror(errno));
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_set(-errno, "cannot create the in-kernel PIT: %s", strerror(errno));
	return 0;
}

static int add_memslots(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = r->slot,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return err_set(-errno, "cannot add guest memory to the VM: %s",
				       strerror(errno));
	}
	return 0;
}

int vm_add_vcpus(struct vm *vm, unsigned n)
{
	if (n < 1 || n > VM_MAX_VCPUS)
		return err_set(-EINVAL, "vCPU count %u is out of range: use 1 to %d", n,
			       VM_MAX_VCPUS);
	vm->cfg.vcpus = n;
	for (unsigned i = vm->nr_vcpus; i < n; i++) {
		int rc = vcpu_create(vm, i, &vm->vcpus[i]);

		if (rc < 0)
			return rc;
		vm->nr_vcpus++;
		rc = dirty_attach_vcpu(vm->dirty, vm->vcpus[i]);
		if (rc < 0)
			return rc;
	}
	return kvm_filter_msrs(vm->kvm, vm->vcpus[0]->fd);
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	int rc = vm_create_shell(cfg, out);

	if (rc == 0 && (rc = vm_add_vcpus(*out, cfg->vcpus)) < 0) {
		vm_destroy(*out);
		*out = NULL;
	}
	return rc;
}

int vm_create_shell(const struct vm_config *cfg, struct vm **out)
{
	struct vm *vm;
	int rc = check_config(cfg);

	if (rc < 0)
		return rc;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return err_set(-ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->fd = -1;
	vm->mem.memfd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	time_cond_init(&vm->cond);

	vm->kvm = kvm_host_get();
	if (!vm->kvm) {
		rc = -ENODEV;
		goto out_free;
	}
	vm->fd = ioctl(vm->kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		rc = err_set(-errno, "cannot create a KVM VM: %s", strerror(errno));
		goto out_free;
	}
	rc = ioctl(vm->fd, KVM_GET_TSC_KHZ, 0);
	vm->tsc_khz = rc > 0 ? (uint64_t)rc : 1000000;
	/* The dirty ring must be enabled before any vCPU exists. */
	rc = dirty_create(vm, &vm->dirty);
	if (rc < 0)
		goto out_free;
	rc = create_platform(vm);
	if (rc < 0)
		goto out_free;
	if (cfg->lend_from)
		mem_lend(cfg->lend_from, cfg->mem_bytes, &vm->mem);
	else if (cfg->mem_later)
		rc = mem_reserve(&vm->mem, cfg->mem_bytes);
	else
		rc = mem_create(&vm->mem, cfg->mem_bytes, cfg->mem_backend);
	if (rc == 0 && cfg->prealloc && !cfg->mem_later)
		rc = mem_populate(&vm->mem);
	if (rc == 0)
		rc = add_memslots(vm);
	if (rc == 0) /* every guest has one: with it, this host's MSRs are probed */
		rc = vm_add_vcpus(vm, 1);
	if (rc < 0)
		goto out_free;
	*out = vm;
	return 0;
out_free:
	vm_destroy(vm);
	return rc;
}

void vm_destroy(struct vm *vm)
{
	bool started = false;

	if (!vm)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		started |= vcpu_started(vm->vcpus[i]);
	if (started)
		vm_stop(vm, false, 0, "VM destroyed");
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vcpu_started(vm->vcpus[i]))
			pthread_join(vm->vcpus[i]->thread, NULL);
	dirty_destroy(vm->dirty);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	if (vm->fd >= 0)
		close(vm->fd);
	mem_destroy(&vm->mem);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

int vm_start(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int rc = vcpu_start(vm->vcpus[i]);

		if (rc < 0) {
			vm_stop(vm, true, 0, "could not start every vCPU thread");
			return rc;
		}
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VM_CREATED && !vm->held)
		vm->state = vm->pause_req ? VM_PAUSED : VM_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int vm_start_held(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->held = true;
	pthread_mutex_unlock(&vm->lock);
	return vm_start(vm);
}

void vm_release(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->held = false;
	if (vm->state == VM_CREATED)
		vm->state = vm->pause_req ? VM_PAUSED : VM_RUNNING;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause(struct vm *vm)
{
	uint64_t start = time_now_ns();
	unsigned threads = 0;
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	vm->pause_req = true;
	pthread_cond_broadcast(&vm->cond); /* ends guest sleeps */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		threads += vcpu_started(vm->vcpus[i]);
		vcpu_kick(vm->vcpus[i]);
	}
	while (vm->parked + vm->exited < threads)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->stop_req)
		rc = -ESHUTDOWN;
	else {
		vm->pauses += vm->state != VM_PAUSED;
		vm->state = VM_PAUSED;
	}
	vm->last_pause_ns = time_now_ns() - start;
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = false;
	if (vm->state == VM_PAUSED) {
		vm->state = vcpu_started(vm->vcpus[0]) ? VM_RUNNING : VM_CREATED;
		vm->resumes++;
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_stop(struct vm *vm, bool failed, int exit_code, const char *reason)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->stop_req) {
		vm->stop_req = true;
		vm->failed = failed;
		vm->exit_code = exit_code;
		snprintf(vm->stop_reason, sizeof(vm->stop_reason), "%s", reason);
		vm->state = VM_STOPPED;
		if (failed)
			log_err("VM stopped: %s", reason);
		else
			log_info("VM stopped: %s", reason);
	}
	pthread_cond_broadcast(&vm->cond);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	pthread_mutex_unlock(&vm->lock);
}

bool vm_wait_stopped(struct vm *vm, int timeout_ms)
{
	uint64_t deadline = time_now_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	bool stopped;

	pthread_mutex_lock(&vm->lock);
	while (!vm->stop_req) {
		struct timespec ts = time_deadline_ts(deadline);

		if (timeout_ms < 0)
			pthread_cond_wait(&vm->cond, &vm->lock);
		else if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	}
	stopped = vm->stop_req;
	pthread_mutex_unlock(&vm->lock);
	return stopped;
}

void vm_wake(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->wake_seq++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_sleep_vcpu(struct vm *vm, uint64_t us)
{
	uint64_t deadline = time_now_ns() + us * NS_PER_US;
	struct timespec ts = time_deadline_ts(deadline);

	pthread_mutex_lock(&vm->lock);
	for (uint64_t seq = vm->wake_seq; !vm->pause_req && !vm->stop_req && vm->wake_seq == seq;)
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&vm->lock);
}

int vm_vcpu_of_thread(struct vm *vm, int tid)
{
	for (unsigned i = 0; tid && i < vm->nr_vcpus; i++)
		if (__atomic_load_n(&vm->vcpus[i]->tid, __ATOMIC_ACQUIRE) == tid)
			return (int)i;
	return -1;
}

uint64_t vm_throttle_sleep(struct vm *vm, uint64_t ns)
{
	uint64_t start = time_now_ns();
	struct timespec ts = time_deadline_ts(start + ns);

	pthread_mutex_lock(&vm->lock);
	while (!vm->pause_req && !vm->stop_req)
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&vm->lock);
	return time_now_ns() - start;
}

int vm_write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = mem_host(&vm->mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	dirty_mark(vm->dirty, gpa, len);
	return 0;
}

const void *vm_read_ptr(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	return mem_host(&vm->mem, gpa, len);
}

struct vm_status vm_get_status(struct vm *vm)
{
	struct vm_status s;

	pthread_mutex_lock(&vm->lock);
	s = (struct vm_status){ .state = vm->state,
				.stopped = vm->stop_req,
				.failed = vm->failed,
				.shut_down = __atomic_load_n(&vm->shut_down, __ATOMIC_ACQUIRE),
				.exit_code = vm->exit_code,
				.last_pause_ns = vm->last_pause_ns,
				.pauses = vm->pauses,
				.resumes = vm->resumes };
	memcpy(s.stop_reason, vm->stop_reason, sizeof(s.stop_reason));
	pthread_mutex_unlock(&vm->lock);
	return s;
}
