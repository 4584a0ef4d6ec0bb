/* Helpers for tests that run real guests on /dev/kvm. */
#ifndef FERRY_TESTS_KVM_HELPERS_H
#define FERRY_TESTS_KVM_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/abi.h"
#include "vm/vm.h"

/* Exit code meson reads as "skipped". */
#define TEST_SKIP 77

/* Return TEST_SKIP from main() with a message if /dev/kvm is not usable. */
int kvm_or_skip(void);

/* A default configuration: mem_mib MiB, vcpus vCPUs, bitmap tracking. */
struct vm_config test_config(uint64_t mem_mib, unsigned vcpus);
/* Create a VM, load the built-in guest with workload spec, and (if start)
 * run it. Fails the test on error. */
struct vm *test_vm_cfg(const struct vm_config *cfg, const char *spec, bool start);
struct vm *test_vm(uint64_t mem_mib, unsigned vcpus, const char *spec, bool start);
const struct ferry_vcpu_status *test_status(struct vm *vm, unsigned vcpu);
uint64_t test_pages_written(struct vm *vm);
/* Wait until every vCPU has finished its initial fill. */
void test_wait_filled(struct vm *vm);
/* Ask the guest for a full self-check sweep and return the errors found. */
uint64_t test_sweep(struct vm *vm);

#endif
