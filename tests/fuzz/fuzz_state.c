/* Fuzz target: the machine-state blob decoder (vm/state.c parse, through
 * state_diff, which needs no KVM). Any input must give a clean result. */
#include <stddef.h>
#include <stdint.h>

#include "vm/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char diff[256];

	/* The blob may end anywhere: hand the decoder an exact-size copy's view. */
	state_diff(data, size, data, size, diff, sizeof(diff));
	return 0;
}
