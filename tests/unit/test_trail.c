/* A migration's trail of statuses (migration.h, migration/trail.c): read in
 * order from where the reader stopped, at most what it asks for, and a
 * reader that fell behind gets the newest MIG_TRAIL, none twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "migration/migration.h"

static void test_in_order(void **unused)
{
	struct mig_trail t = { 0 };
	enum mig_status out[MIG_TRAIL];
	uint32_t seen = 0;

	(void)unused;
	mig_trail_note(&t, MIG_SETUP);
	mig_trail_note(&t, MIG_ACTIVE);
	assert_int_equal(mig_trail_read(&t, &seen, out, MIG_TRAIL), 2);
	assert_int_equal(out[0], MIG_SETUP);
	assert_int_equal(out[1], MIG_ACTIVE);
	assert_int_equal(mig_trail_read(&t, &seen, out, MIG_TRAIL), 0); /* nothing new */
	mig_trail_note(&t, MIG_SWITCHOVER);
	mig_trail_note(&t, MIG_COMPLETED);
	assert_int_equal(mig_trail_read(&t, &seen, out, 1), 1); /* at most max */
	assert_int_equal(out[0], MIG_SWITCHOVER);
	assert_int_equal(mig_trail_read(&t, &seen, out, MIG_TRAIL), 1);
	assert_int_equal(out[0], MIG_COMPLETED);
	assert_int_equal(seen, 4);
}

static void test_behind(void **unused)
{
	struct mig_trail t = { 0 };
	enum mig_status out[MIG_TRAIL];
	uint32_t seen = 0;

	(void)unused;
	for (int i = 0; i < MIG_TRAIL + 5; i++)
		mig_trail_note(&t, i % 2 ? MIG_POSTCOPY : MIG_POSTCOPY_PAUSED);
	mig_trail_note(&t, MIG_COMPLETED);
	assert_int_equal(mig_trail_read(&t, &seen, out, MIG_TRAIL), MIG_TRAIL);
	assert_int_equal(out[MIG_TRAIL - 1], MIG_COMPLETED); /* the newest, last */
	assert_int_equal(out[0], MIG_POSTCOPY_PAUSED);	     /* the 7th noted (index 6, even) */
	assert_int_equal(seen, MIG_TRAIL + 6);
	assert_int_equal(mig_trail_read(&t, &seen, out, MIG_TRAIL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
