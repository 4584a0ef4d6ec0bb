/* Loads a ferry guest: the ELF64 image, identity page tables, GDT, TSS and IDT,
 * the parameter page, and every vCPU's registers for entry at CPL 3 (see
 * guest/abi.h and docs/guest-abi.md). */
#ifndef FERRY_VM_LOADER_H
#define FERRY_VM_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct ferry_workload_args;
struct vm;

/* The guest image built into ferry. */
extern const unsigned char guest_image[];
extern const size_t guest_image_len;

/* Check that image is an ELF64 x86-64 executable whose loadable segments lie
 * within [FERRY_IMAGE_GPA, FERRY_IMAGE_END). Returns 0 or -ENOEXEC with
 * err_msg(); on success *entry is the entry point. */
int loader_check_elf(const void *image, size_t len, uint64_t *entry);
/* Load image into vm, write the parameter page with args and set up every
 * vCPU to enter it. */
int loader_load(struct vm *vm, const void *image, size_t len,
		const struct ferry_workload_args *args);
/* The built-in guest running the workload spec (vm/workload.h). Returns 0,
 * or -EINVAL with err_msg() for a bad spec, or -errno. */
int loader_load_builtin(struct vm *vm, const char *spec);
/* Whether what loading the built-in guest wrote and no one may change (its
 * code, page tables, GDT, TSS and IDT) is still as built: after a vCPU shut
 * down, this tells memory that changed from a CPU that lost its way. 0, or
 * -EIO with a sentence naming the first difference. */
int loader_check_intact(struct vm *vm);

#endif
