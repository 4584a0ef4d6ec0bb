/* The built-in guest's workload specification, as the user writes it:
 *   KIND[:key=value,...]   e.g. dirty:wss=512M,rate=100M,pattern=random,write=byte
 * parsed into the guest ABI's struct ferry_workload_args. */
#ifndef FERRY_VM_WORKLOAD_H
#define FERRY_VM_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "guest/abi.h"

/* Parse spec for a guest of mem_bytes. Returns 0, or -EINVAL with a sentence
 * in err_msg() naming the bad key or value. */
int workload_parse(const char *spec, uint64_t mem_bytes, struct ferry_workload_args *out);
/* The largest working set (pages) a guest of mem_bytes can hold. */
uint64_t workload_max_wss_pages(uint64_t mem_bytes);
/* A one-line description, e.g. "dirty wss=512 MiB rate=25600 pages/s ...". */
void workload_describe(const struct ferry_workload_args *a, char *buf, size_t len);

#endif
