/* The DESCRIPTION column of `berth list` and the reported timestamps. */
#include "unit.h"

#include <stdio.h>

#include "agent/status.h"

#define NOW 1700000000000LL

static void expect(enum runtime_status s, int code, int64_t started, int64_t exited,
		   const char *want)
{
	char out[128];
	status_description(s, code, started, exited, NOW, out, sizeof(out));
	assert_string_equal(out, want);
}

static void running_shows_uptime_in_rough_units(void **state)
{
	expect(RT_RUNNING, 0, NOW - 3 * 60000 - 5000, 0, "Up 3 minutes");
	expect(RT_RUNNING, 0, NOW - 1000, 0, "Up 1 second");
	expect(RT_RUNNING, 0, NOW - 200, 0, "Up 0 seconds");
	expect(RT_RUNNING, 0, NOW - 2 * 3600000LL, 0, "Up 2 hours");
	expect(RT_RUNNING, 0, NOW - 86400000LL, 0, "Up 1 day");
}

static void stopped_without_exit_is_plain(void **state)
{
	expect(RT_STOPPED, 0, 0, 0, "Stopped");
}

static void stopped_after_exit_says_when(void **state)
{
	expect(RT_STOPPED, 0, 0, NOW - 2 * 3600000LL, "Stopped 2 hours ago");
}

static void failed_shows_exit_code_and_age(void **state)
{
	expect(RT_FAILED, 137, 0, NOW - 2 * 60000, "Failed (137) 2 minutes ago");
}

static void backoff_shows_exit_code(void **state)
{
	expect(RT_BACKOFF, 1, 0, NOW - 4000, "Backoff (1) 4 seconds ago");
	expect(RT_BACKOFF, 0, 0, 0, "Backoff");
}

static void utc_times_are_iso8601(void **state)
{
	char out[64];
	format_utc(1700000000123LL, out, sizeof(out));
	assert_string_equal(out, "2023-11-14T22:13:20.123Z");
	format_utc(0, out, sizeof(out));
	assert_string_equal(out, "");
}

static void status_names_are_edge_agents(void **state)
{
	assert_string_equal(runtime_status_name(RT_RUNNING), "running");
	assert_string_equal(runtime_status_name(RT_BACKOFF), "backoff");
	assert_string_equal(runtime_status_name(RT_FAILED), "failed");
	assert_string_equal(runtime_status_name(RT_STOPPED), "stopped");
	assert_string_equal(runtime_status_name(RT_UNKNOWN), "unknown");
}

static void health_follows_uptime_as_docker_shows_it(void **state)
{
	char out[128] = "Up 3 minutes";
	status_add_health(out, sizeof(out), "healthy");
	assert_string_equal(out, "Up 3 minutes (healthy)");
	snprintf(out, sizeof(out), "Up 1 second");
	status_add_health(out, sizeof(out), "starting");
	assert_string_equal(out, "Up 1 second (health: starting)");
	snprintf(out, sizeof(out), "Up 2 hours");
	status_add_health(out, sizeof(out), "none");
	assert_string_equal(out, "Up 2 hours");
}

static void an_unhealthy_stop_restarts_until_too_many(void **state)
{
	assert_int_equal(status_after_unhealthy_stop(0), RT_BACKOFF);
	assert_int_equal(status_after_unhealthy_stop(RESTARTS_MAX - 1), RT_BACKOFF);
	assert_int_equal(status_after_unhealthy_stop(RESTARTS_MAX), RT_FAILED);
	assert_string_equal(runtime_status_name(RT_UNHEALTHY), "unhealthy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(running_shows_uptime_in_rough_units),
	    cmocka_unit_test(stopped_without_exit_is_plain),
	    cmocka_unit_test(stopped_after_exit_says_when),
	    cmocka_unit_test(failed_shows_exit_code_and_age),
	    cmocka_unit_test(backoff_shows_exit_code),
	    cmocka_unit_test(utc_times_are_iso8601),
	    cmocka_unit_test(status_names_are_edge_agents),
	    cmocka_unit_test(health_follows_uptime_as_docker_shows_it),
	    cmocka_unit_test(an_unhealthy_stop_restarts_until_too_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
