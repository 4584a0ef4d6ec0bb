/* The built-in guest's workload specification, as the user writes it:
 *   KIND[:key=value,...]   e.g. dirty:wss=512M,rate=100M,pattern=random,write=byte
 * parsed into the guest ABI's struct ferry_workload_args. Layers above vm/
 * never see that struct: they check and describe a spec, and describe the
 * workload of a guest that runs (one that migrated in). */
#ifndef FERRY_VM_WORKLOAD_H
#define FERRY_VM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ferry_workload_args;
struct vm;

/* Parse spec for a guest of mem_bytes. Returns 0, or -EINVAL with a sentence
 * in err_msg() naming the bad key or value. */
int workload_parse(const char *spec, uint64_t mem_bytes, struct ferry_workload_args *out);
/* The largest working set (pages) a guest of mem_bytes can hold. */
uint64_t workload_max_wss_pages(uint64_t mem_bytes);
/* A one-line description, e.g. "dirty wss=512 MiB rate=25600 pages/s ...". */
void workload_describe(const struct ferry_workload_args *a, char *buf, size_t len);
/* Parse spec as workload_parse does; on success describe it into desc. */
int workload_check(const char *spec, uint64_t mem_bytes, char *desc, size_t len);
/* Describe the workload of the guest in vm from its parameter page; false
 * (desc "unknown") if vm does not run ferry's guest. */
bool workload_of_guest(const struct vm *vm, char *desc, size_t len);

#endif
