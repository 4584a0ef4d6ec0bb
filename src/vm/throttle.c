#include "vm/throttle.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/time.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

struct throttle {
	struct vm *vm;
	pthread_t thread;
	bool stop; /* atomic */
};

/* Kick every throttled vCPU often enough that each runs about (100-p)% of a
 * slice between payments, but not more than once a millisecond. */
static void *ticker(void *arg)
{
	struct throttle *t = arg;

	pthread_setname_np(pthread_self(), "throttle");
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		unsigned most = 0;

		for (unsigned i = 0; i < t->vm->nr_vcpus; i++) {
			struct vcpu *v = t->vm->vcpus[i];
			unsigned pct = __atomic_load_n(&v->throttle_pct, __ATOMIC_RELAXED);

			if (pct)
				vcpu_kick(v);
			most = pct > most ? pct : most;
		}
		time_sleep_ns(most >= 90 ? NS_PER_MS : THROTTLE_SLICE_NS * (100 - most) / 100);
	}
	return NULL;
}

int throttle_start(struct vm *vm, struct throttle **out)
{
	struct throttle *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return err_set(-ENOMEM, "out of memory");
	t->vm = vm;
	rc = pthread_create(&t->thread, NULL, ticker, t);
	if (rc) {
		free(t);
		return err_set(-rc, "cannot start the throttle thread: %s", strerror(rc));
	}
	*out = t;
	return 0;
}

void throttle_stop(struct throttle *t)
{
	if (!t)
		return;
	throttle_set_all(t, 0);
	__atomic_store_n(&t->stop, true, __ATOMIC_RELEASE);
	pthread_join(t->thread, NULL);
	free(t);
}

void throttle_set(struct throttle *t, unsigned vcpu, unsigned pct)
{
	if (vcpu < t->vm->nr_vcpus)
		vcpu_throttle(t->vm->vcpus[vcpu], pct > THROTTLE_MAX_PCT ? THROTTLE_MAX_PCT : pct);
}

void throttle_set_all(struct throttle *t, unsigned pct)
{
	for (unsigned i = 0; i < t->vm->nr_vcpus; i++)
		throttle_set(t, i, pct);
}
