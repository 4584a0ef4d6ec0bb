/* The round gate: no channel starts round r+1 before every channel has
 * ended round r, however slow one of them is; a channel out of step is a
 * protocol error; an abort releases everyone. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "migration/recv/round_gate.h"
#include "util/error.h"

#define CHANNELS 3
#define ROUNDS	 20

static struct round_gate gate;
static int ended[ROUNDS];    /* channels that ended each round */
static int early;	     /* writes of round r+1 seen before round r ended everywhere */
static int waited[CHANNELS]; /* passes that had to wait */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void *channel(void *arg)
{
	int index = (int)(intptr_t)arg;

	for (int r = 0; r < ROUNDS; r++) {
		pthread_mutex_lock(&count_lock);
		if (r > 0 && ended[r - 1] != CHANNELS)
			early++; /* a "page" of round r while round r-1 is open */
		pthread_mutex_unlock(&count_lock);
		if (index == 0)
			usleep(2000); /* the slow channel */
		pthread_mutex_lock(&count_lock);
		ended[r]++;
		pthread_mutex_unlock(&count_lock);
		int rc = round_gate_pass(&gate, (uint32_t)r);

		if (rc < 0)
			return (void *)1;
		waited[index] += rc;
	}
	return NULL;
}

static void test_channels_line_up(void **unused)
{
	pthread_t t[CHANNELS];
	void *ret;

	(void)unused;
	round_gate_init(&gate, CHANNELS);
	for (int i = 0; i < CHANNELS; i++)
		pthread_create(&t[i], NULL, channel, (void *)(intptr_t)i);
	for (int i = 0; i < CHANNELS; i++) {
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(early, 0);
	assert_int_equal(round_gate_rounds(&gate), ROUNDS);
	/* The fast channels waited for the slow one nearly every round. */
	assert_true(waited[1] + waited[2] >= ROUNDS);
	round_gate_destroy(&gate);
}

static void test_out_of_step(void **unused)
{
	(void)unused;
	round_gate_init(&gate, 1);
	assert_int_equal(round_gate_pass(&gate, 0), 0); /* the only one: no wait */
	assert_int_equal(round_gate_pass(&gate, 2), -EPROTO);
	assert_non_null(strstr(err_msg(), "ended round 2 while round 1"));
	round_gate_destroy(&gate);
}

static void *wait_round0(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)round_gate_pass(&gate, 0);
}

static void test_abort_releases(void **unused)
{
	pthread_t t;
	void *ret;

	(void)unused;
	round_gate_init(&gate, 2);
	pthread_create(&t, NULL, wait_round0, NULL);
	usleep(10000);
	round_gate_abort(&gate);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, -ECANCELED);
	assert_int_equal(round_gate_pass(&gate, 0), -ECANCELED);
	round_gate_destroy(&gate);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channels_line_up),
		cmocka_unit_test(test_out_of_step),
		cmocka_unit_test(test_abort_releases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
