/* Fuzz target: the workload specification parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/abi.h"
#include "vm/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_workload_args a;
	char *spec = malloc(size + 1);

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (workload_parse(spec, 1ull << 30, &a) == 0 &&
	    ferry_ws_gpa(a.wss_pages) + a.wss_pages * FERRY_PAGE_SIZE > 1ull << 30)
		abort(); /* a parsed working set must fit the guest */
	free(spec);
	return 0;
}
