#include "vm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/error.h"
#include "util/log.h"
#include "util/time.h"
#include "vm/dirty.h"
#include "vm/port.h"
#include "vm/throttle.h"
#include "vm/vm.h"

#define SIG_KICK SIGUSR1

enum {
	LOOP_CONTINUE = 0,
	LOOP_STOP = 1
};

static void kick_handler(int sig)
{
	(void)sig; /* only here to interrupt KVM_RUN with EINTR */
}

static void install_kick_handler_once(void)
{
	struct sigaction sa = { .sa_handler = kick_handler }; /* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	sigaction(SIG_KICK, &sa, NULL);
}

static void install_kick_handler(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install_kick_handler_once);
}

/* CPUID as KVM supports it, with this vCPU's APIC ID where CPUID reports it. */
static int set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *sup = vcpu->vm->kvm->cpuid;
	size_t size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int rc = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, sup, size);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | vcpu->index << 24;
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = vcpu->index;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		rc = err_set(-errno, "cannot set CPUID of vCPU %u: %s", vcpu->index,
			     strerror(errno));
	free(c);
	return rc;
}

int vcpu_create(struct vm *vm, unsigned index, struct vcpu **out)
{
	struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int rc;

	if (!vcpu)
		return err_set(-ENOMEM, "out of memory");
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		rc = err_set(-errno, "cannot create vCPU %u: %s", index, strerror(errno));
		goto out_free;
	}
	vcpu->run = mmap(NULL, (size_t)vm->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		rc = err_set(-errno, "cannot map vCPU %u: %s", index, strerror(errno));
		goto out_close;
	}
	rc = set_cpuid(vcpu);
	if (rc < 0)
		goto out_unmap;
	*out = vcpu;
	return 0;
out_unmap:
	munmap(vcpu->run, (size_t)vm->kvm->vcpu_mmap_size);
out_close:
	close(vcpu->fd);
out_free:
	free(vcpu);
	return rc;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	munmap(vcpu->run, (size_t)vcpu->vm->kvm->vcpu_mmap_size);
	close(vcpu->fd);
	free(vcpu);
}

void vcpu_kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	/* A thread not started yet sees immediate_exit on its first run. */
	if (vcpu_started(vcpu))
		pthread_kill(vcpu->thread, SIG_KICK);
}

void vcpu_throttle(struct vcpu *vcpu, unsigned pct)
{
	__atomic_store_n(&vcpu->throttle_pct, pct, __ATOMIC_RELAXED);
}

/* Sleep off the throttle's share of the time run since the last payment.
 * Proportional to measured run time, so late kicks do not weaken it; capped
 * at a slice, so time idle in a guest sleep call does not count in full. */
static void pay_throttle(struct vcpu *vcpu)
{
	unsigned pct = __atomic_load_n(&vcpu->throttle_pct, __ATOMIC_RELAXED);
	uint64_t now = time_now_ns(), ran = now - vcpu->ran_since_ns;

	if (pct && vcpu->ran_since_ns) {
		ran = ran < THROTTLE_SLICE_NS ? ran : THROTTLE_SLICE_NS;
		__atomic_add_fetch(&vcpu->throttled_ns,
				   vm_throttle_sleep(vcpu->vm, ran * pct / (100 - pct)),
				   __ATOMIC_RELAXED);
		now = time_now_ns();
	}
	vcpu->ran_since_ns = now;
}

/* Log the general and segment registers, for fatal exits. */
static void vcpu_dump(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_err("vCPU %u: registers unavailable: %s", vcpu->index, strerror(errno));
		return;
	}
	log_err("vCPU %u: rip=%#llx rsp=%#llx rflags=%#llx rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx",
		vcpu->index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx);
	log_err("vCPU %u: rsi=%#llx rdi=%#llx rbp=%#llx r8=%#llx r9=%#llx r10=%#llx r11=%#llx",
		vcpu->index, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11);
	log_err("vCPU %u: cs=%#x/dpl%u ss=%#x cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx",
		vcpu->index, s.cs.selector, s.cs.dpl, s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4,
		s.efer);
	if (!(s.cr0 & 1)) /* ferry's guest never leaves protected mode */
		log_err("vCPU %u: that is the reset state: KVM on AMD reinitialises a vCPU that shut "
			"down, so where the guest was is lost",
			vcpu->index);
}

/* Stop the VM with a sentence and the registers. */
static int fatal(struct vcpu *vcpu, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fatal(struct vcpu *vcpu, const char *fmt, ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	vcpu_dump(vcpu);
	vm_stop(vcpu->vm, true, 0, reason);
	return LOOP_STOP;
}

static int handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return port_handle(vcpu) < 0 ? LOOP_STOP : LOOP_CONTINUE;
	case KVM_EXIT_INTR:
		return LOOP_CONTINUE;
	case KVM_EXIT_DIRTY_RING_FULL:
		dirty_ring_full(vcpu->vm->dirty, vcpu->index);
		return LOOP_CONTINUE;
	case KVM_EXIT_HLT:
		return fatal(vcpu, "vCPU %u executed hlt, which a ring-3 guest cannot",
			     vcpu->index);
	case KVM_EXIT_SHUTDOWN:
		__atomic_store_n(&vcpu->vm->shut_down, true, __ATOMIC_RELEASE);
		return fatal(
			vcpu,
			"vCPU %u shut down (triple fault: an exception its handlers could not take)",
			vcpu->index);
	case KVM_EXIT_FAIL_ENTRY:
		return fatal(vcpu, "vCPU %u failed to enter the guest (hardware reason %#llx)",
			     vcpu->index,
			     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	case KVM_EXIT_INTERNAL_ERROR:
		return fatal(vcpu, "vCPU %u: KVM internal error, suberror %u", vcpu->index,
			     run->internal.suberror);
	case KVM_EXIT_MMIO:
		return fatal(vcpu, "vCPU %u accessed %#llx, which is not guest RAM", vcpu->index,
			     (unsigned long long)run->mmio.phys_addr);
	case KVM_EXIT_SYSTEM_EVENT:
		return fatal(vcpu, "vCPU %u raised system event %u", vcpu->index,
			     run->system_event.type);
	default:
		return fatal(vcpu, "vCPU %u: unexpected KVM exit reason %u", vcpu->index,
			     run->exit_reason);
	}
}

/* KVM completes an I/O instruction only on the next KVM_RUN; a state saved
 * before that would lose it. An immediate-exit run completes it without
 * entering the guest (see KVM's api.rst on immediate_exit). */
static void complete_pending_io(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	ioctl(vcpu->fd, KVM_RUN, 0);
}

/* Wait here while the VM is paused. Returns false when the thread must end. */
static bool park_if_paused(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool keep_running;

	pthread_mutex_lock(&vm->lock);
	if (vm->pause_req && !vm->stop_req) {
		pthread_mutex_unlock(&vm->lock);
		complete_pending_io(vcpu);
		pthread_mutex_lock(&vm->lock);
		vm->parked++;
		pthread_cond_broadcast(&vm->cond);
		while (vm->pause_req && !vm->stop_req)
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked--;
	}
	keep_running = !vm->stop_req;
	/* A kick may have landed while parked; it is served. (Kicks come from
	 * other threads: every access to the flag is atomic.) */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->lock);
	return keep_running;
}

/* Until vm_release (vm_start_held), before the vCPU ever runs. */
static void wait_released(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->held && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	__atomic_store_n(&vcpu->tid, (int)gettid(), __ATOMIC_RELEASE);
	wait_released(vm);
	while (park_if_paused(vcpu)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				pay_throttle(vcpu);
				continue;
			}
			fatal(vcpu, "vCPU %u: KVM_RUN failed: %s", vcpu->index, strerror(errno));
			break;
		}
		if (handle_exit(vcpu) == LOOP_STOP)
			break;
	}
	pthread_mutex_lock(&vm->lock);
	vm->exited++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	sigset_t all, old;
	int rc;

	install_kick_handler();
	/* The thread inherits this mask: block everything but the kick so that
	 * process signals (SIGINT, SIGTERM) go to the thread that takes them. */
	sigfillset(&all);
	sigdelset(&all, SIG_KICK);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return err_set(-rc, "cannot start vCPU %u thread: %s", vcpu->index, strerror(rc));
	__atomic_store_n(&vcpu->thread_started, true, __ATOMIC_RELEASE); /* vcpu->thread is set */
	return 0;
}
