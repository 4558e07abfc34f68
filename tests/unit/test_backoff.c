/* edgeAgent's restart policy and backoff: min(unit * 2^count, 300 s). */
#include "unit.h"

#include "agent/status.h"

static void backoff_doubles_from_the_unit(void **state)
{
	assert_int_equal(backoff_delay_ms(10000, 0), 10000);
	assert_int_equal(backoff_delay_ms(10000, 1), 20000);
	assert_int_equal(backoff_delay_ms(10000, 2), 40000);
	assert_int_equal(backoff_delay_ms(10000, 4), 160000);
}

static void backoff_is_capped_at_five_minutes(void **state)
{
	assert_int_equal(backoff_delay_ms(10000, 5), 300000);
	assert_int_equal(backoff_delay_ms(10000, 20), 300000);
	assert_int_equal(backoff_delay_ms(10000, 4000000000u), 300000);
}

static void backoff_follows_a_small_unit(void **state)
{
	assert_int_equal(backoff_delay_ms(100, 0), 100);
	assert_int_equal(backoff_delay_ms(100, 3), 800);
	assert_int_equal(backoff_delay_ms(100, 12), 300000);
}

static void policy_never_restarts_nothing(void **state)
{
	assert_false(restart_policy_restarts(RESTART_NEVER, 1));
	assert_false(restart_policy_restarts(RESTART_NEVER, 0));
	assert_true(restart_policy_restarts(RESTART_ALWAYS, 1));
	assert_true(restart_policy_restarts(RESTART_ALWAYS, 0));
}

static void policy_on_failure_restarts_non_zero_exits(void **state)
{
	assert_true(restart_policy_restarts(RESTART_ON_FAILURE, 137));
	assert_false(restart_policy_restarts(RESTART_ON_FAILURE, 0));
	assert_true(restart_policy_restarts(RESTART_ON_UNHEALTHY, 1));
	assert_false(restart_policy_restarts(RESTART_ON_UNHEALTHY, 0));
}

static void policy_always_restarts_clean_exits(void **state)
{
	assert_true(restart_policy_restarts(RESTART_ALWAYS, 0));
	assert_true(restart_policy_restarts(RESTART_ALWAYS, 2));
}

static void exit_leads_to_backoff_then_failed_after_twenty(void **state)
{
	assert_int_equal(status_after_exit(RESTART_ALWAYS, 1, 0), RT_BACKOFF);
	assert_int_equal(status_after_exit(RESTART_ALWAYS, 1, 19), RT_BACKOFF);
	assert_int_equal(status_after_exit(RESTART_ALWAYS, 1, 20), RT_FAILED);
}

static void exit_not_restarted_is_stopped_or_failed(void **state)
{
	assert_int_equal(status_after_exit(RESTART_NEVER, 0, 0), RT_STOPPED);
	assert_int_equal(status_after_exit(RESTART_NEVER, 3, 0), RT_FAILED);
	assert_int_equal(status_after_exit(RESTART_ON_FAILURE, 0, 0), RT_STOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backoff_doubles_from_the_unit),
	    cmocka_unit_test(backoff_is_capped_at_five_minutes),
	    cmocka_unit_test(backoff_follows_a_small_unit),
	    cmocka_unit_test(policy_never_restarts_nothing),
	    cmocka_unit_test(policy_on_failure_restarts_non_zero_exits),
	    cmocka_unit_test(policy_always_restarts_clean_exits),
	    cmocka_unit_test(exit_leads_to_backoff_then_failed_after_twenty),
	    cmocka_unit_test(exit_not_restarted_is_stopped_or_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
