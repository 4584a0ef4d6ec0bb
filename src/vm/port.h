/* The guest's devices: the console port (bytes to the log, a line at a time)
 * and the ferry call port (sleep, exit, verification failure, panic). See
 * guest/abi.h for the ABI. */
#ifndef FERRY_VM_PORT_H
#define FERRY_VM_PORT_H

#include <stdint.h>

struct vcpu;

/* Serve the KVM_EXIT_IO in vcpu->run. Returns 0 to keep running, or -1 when
 * the VM has been stopped (guest exit or panic). */
int port_handle(struct vcpu *vcpu);

#endif
