/* The host's KVM: /dev/kvm, its capabilities, and what it supports that every
 * VM needs (CPUID, the MSR list that can be saved and restored). Opened once
 * per process. */
#ifndef FERRY_VM_KVM_H
#define FERRY_VM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_host {
	int fd;
	int vcpu_mmap_size;
	int xsave_size;		   /* bytes of struct kvm_xsave, from KVM_CAP_XSAVE2 */
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msrs; /* restorable MSRs once msrs_filtered */
	bool msrs_filtered;
};

/* Open /dev/kvm and read what it supports; idempotent. Returns the host or
 * NULL with err_msg() saying why (missing module, no permission, too old). */
struct kvm_host *kvm_host_get(void);
/* 1 if /dev/kvm exists and can be opened, for tests that must skip without it. */
bool kvm_available(void);
int kvm_check_cap(int fd, long cap);
/* Keep only the MSRs that a vCPU can both read and write back (done once). */
int kvm_filter_msrs(struct kvm_host *kvm, int vcpu_fd);

#endif
