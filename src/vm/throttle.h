/* Slowing vCPUs down, one by one: a throttled vCPU spends pct% of its time
 * asleep outside the guest, in slices of about 10 ms (at 90% and above: runs
 * of 1 ms). A ticker thread kicks throttled vCPUs out of KVM_RUN; on each
 * kick the vCPU sleeps pct/(100-pct) times what it ran since its last sleep
 * (a pause request ends the sleep at once, so a throttle never adds to the
 * switchover). vCPUs at 0% are never kicked. */
#ifndef FERRY_VM_THROTTLE_H
#define FERRY_VM_THROTTLE_H

#include <stdint.h>

#define THROTTLE_SLICE_NS 10000000ull
#define THROTTLE_MAX_PCT  99u

struct vm;
struct throttle;

/* Start the ticker for vm; all vCPUs at 0%. Returns 0 or -errno with err_msg(). */
int throttle_start(struct vm *vm, struct throttle **out);
/* Every vCPU back to full speed; stop the ticker. NULL is fine. */
void throttle_stop(struct throttle *t);
void throttle_set(struct throttle *t, unsigned vcpu, unsigned pct);
void throttle_set_all(struct throttle *t, unsigned pct);

#endif
