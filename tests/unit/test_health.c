/* Health checks: Docker's Healthcheck as the daemon reads it (image and
 * createOptions, merged, defaults), the state machine the shim runs, and the
 * exec request a shim takes. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/healthcheck.h"
#include "shim/exec.h"
#include "shim/health.h"

#define MS 1000000LL

static int parse(const char *json, struct healthcheck *h, struct berr *err)
{
	return healthcheck_parse_text(json, "test", h, err);
}

static void cmd_and_cmd_shell_become_argv(void **state)
{
	struct healthcheck h;
	struct instance_health out;
	struct berr err;
	assert_int_equal(parse("{\"Test\":[\"CMD\",\"/bin/check\",\"-x\"]}", &h, &err), 0);
	assert_int_equal(healthcheck_resolve(&h, NULL, &out, &err), 0);
	assert_string_equal(out.test[0], "/bin/check");
	assert_string_equal(out.test[1], "-x");
	assert_null(out.test[2]);
	strv_free(out.test);
	healthcheck_clear(&h);
	assert_int_equal(
	    parse("{\"Test\":[\"CMD-SHELL\",\"curl -f localhost || exit 1\"]}", &h, &err), 0);
	assert_int_equal(healthcheck_resolve(&h, NULL, &out, &err), 0);
	assert_string_equal(out.test[0], "/bin/sh");
	assert_string_equal(out.test[1], "-c");
	assert_string_equal(out.test[2], "curl -f localhost || exit 1");
	strv_free(out.test);
	healthcheck_clear(&h);
}

static void docker_defaults_apply_to_what_is_not_given(void **state)
{
	struct healthcheck h;
	struct instance_health out;
	struct berr err;
	assert_int_equal(parse("{\"Test\":[\"CMD\",\"true\"]}", &h, &err), 0);
	assert_int_equal(healthcheck_resolve(&h, NULL, &out, &err), 0);
	assert_int_equal(out.interval_ms, 30000);
	assert_int_equal(out.timeout_ms, 30000);
	assert_int_equal(out.start_period_ms, 0);
	assert_int_equal(out.start_interval_ms, 5000);
	assert_int_equal(out.retries, 3);
	strv_free(out.test);
	healthcheck_clear(&h);
}

static void the_module_check_goes_over_the_image_field_by_field(void **state)
{
	struct healthcheck mod, img;
	struct instance_health out;
	struct berr err;
	assert_int_equal(parse("{\"Test\":[\"CMD\",\"img\"],\"Interval\":60000000000,"
			       "\"Timeout\":7000000000,\"Retries\":5}",
			       &img, &err),
			 0);
	assert_int_equal(parse("{\"Interval\":2000000000}", &mod, &err), 0);
	assert_int_equal(healthcheck_resolve(&mod, &img, &out, &err), 0);
	assert_string_equal(out.test[0], "img");
	assert_int_equal(out.interval_ms, 2000);
	assert_int_equal(out.timeout_ms, 7000);
	assert_int_equal(out.retries, 5);
	strv_free(out.test);
	healthcheck_clear(&mod);
	/* NONE turns the image's off; an empty Test keeps it. */
	assert_int_equal(parse("{\"Test\":[\"NONE\"]}", &mod, &err), 0);
	assert_int_equal(healthcheck_resolve(&mod, &img, &out, &err), 0);
	assert_null(out.test);
	healthcheck_clear(&mod);
	assert_int_equal(parse("{\"Test\":[]}", &mod, &err), 0);
	assert_int_equal(healthcheck_resolve(&mod, &img, &out, &err), 0);
	assert_string_equal(out.test[0], "img");
	strv_free(out.test);
	healthcheck_clear(&mod);
	healthcheck_clear(&img);
	/* Neither has one. */
	assert_int_equal(healthcheck_resolve(NULL, NULL, &out, &err), 0);
	assert_null(out.test);
}

static void bad_checks_are_refused_naming_the_field(void **state)
{
	struct healthcheck h;
	struct berr err;
	assert_int_equal(parse("{\"Test\":[\"CMD\"]}", &h, &err), -1);
	assert_non_null(strstr(err.msg, "Test"));
	assert_int_equal(parse("{\"Test\":[\"SHELL\",\"x\"]}", &h, &err), -1);
	assert_int_equal(parse("{\"Test\":[\"CMD-SHELL\",\"a\",\"b\"]}", &h, &err), -1);
	assert_int_equal(parse("{\"Test\":[\"NONE\",\"x\"]}", &h, &err), -1);
	assert_int_equal(parse("{\"Test\":\"CMD true\"}", &h, &err), -1);
	assert_int_equal(parse("{\"Interval\":999999}", &h, &err), -1);
	assert_non_null(strstr(err.msg, "Interval"));
	assert_int_equal(parse("{\"Timeout\":-1}", &h, &err), -1);
	assert_int_equal(parse("{\"Retries\":-1}", &h, &err), -1);
	assert_int_equal(parse("[1]", &h, &err), -1);
	/* The positive control: 1 ms is the least Docker takes. */
	assert_int_equal(parse("{\"Interval\":1000000}", &h, &err), 0);
	healthcheck_clear(&h);
}

static const struct instance_health cfg = {.retries = 3, .start_period_ms = 10000};

static void a_success_makes_it_healthy_and_resets_the_streak(void **state)
{
	struct health_check h = {HEALTH_STARTING, 0};
	assert_true(health_apply(&cfg, &h, 0, 100));
	assert_int_equal(h.status, HEALTH_HEALTHY);
	assert_true(health_apply(&cfg, &h, 1, 20000));
	assert_int_equal(h.failing_streak, 1);
	assert_int_equal(h.status, HEALTH_HEALTHY);
	assert_true(health_apply(&cfg, &h, 0, 21000));
	assert_int_equal(h.failing_streak, 0);
	assert_false(health_apply(&cfg, &h, 0, 22000));
}

static void retries_failures_in_a_row_make_it_unhealthy(void **state)
{
	struct health_check h = {HEALTH_HEALTHY, 0};
	health_apply(&cfg, &h, 1, 20000);
	health_apply(&cfg, &h, -1, 21000); /* a timeout fails like any other */
	assert_int_equal(h.status, HEALTH_HEALTHY);
	health_apply(&cfg, &h, 2, 22000);
	assert_int_equal(h.status, HEALTH_UNHEALTHY);
	assert_int_equal(h.failing_streak, 3);
}

static void failures_in_the_start_period_do_not_count_until_a_success(void **state)
{
	struct health_check h = {HEALTH_STARTING, 0};
	for (int i = 0; i < 5; i++)
		assert_false(health_apply(&cfg, &h, 1, 1000 * i));
	assert_int_equal(h.status, HEALTH_STARTING);
	assert_int_equal(h.failing_streak, 0);
	/* Past the start period they count. */
	health_apply(&cfg, &h, 1, 10000);
	assert_int_equal(h.failing_streak, 1);
	/* Once healthy, a failure counts even within the start period. */
	struct health_check g = {HEALTH_STARTING, 0};
	health_apply(&cfg, &g, 0, 100);
	health_apply(&cfg, &g, 1, 200);
	assert_int_equal(g.failing_streak, 1);
}

static void the_start_interval_applies_only_while_starting(void **state)
{
	struct instance_health c = {
	    .interval_ms = 30000, .start_period_ms = 60000, .start_interval_ms = 1000};
	struct health_check h = {HEALTH_STARTING, 0};
	assert_int_equal(health_delay_ms(&c, &h, 0), 1000);
	assert_int_equal(health_delay_ms(&c, &h, 60000), 30000);
	h.status = HEALTH_HEALTHY;
	assert_int_equal(health_delay_ms(&c, &h, 0), 30000);
	struct instance_health d = {0};
	assert_int_equal(health_delay_ms(&d, &h, 0), HEALTH_INTERVAL_DEFAULT);
}

static void exec_requests_are_bounded_and_checked(void **state)
{
	struct exec_request r;
	struct berr err;
	const char *ok =
	    "{\"args\":[\"/bin/sh\",\"-c\",\"id\"],\"env\":[\"A=1\"],\"user\":\"1000\","
	    "\"cwd\":\"/tmp\",\"tty\":true}";
	assert_int_equal(exec_request_parse(ok, strlen(ok), &r, &err), 0);
	assert_string_equal(r.args[2], "id");
	assert_string_equal(r.env[0], "A=1");
	assert_string_equal(r.user, "1000");
	assert_true(r.tty);
	char *json = NULL;
	size_t len = 0;
	assert_int_equal(exec_request_json(&r, &json, &len, &err), 0);
	struct exec_request back;
	assert_int_equal(exec_request_parse(json, len, &back, &err), 0);
	assert_string_equal(back.cwd, "/tmp");
	exec_request_clear(&back);
	free(json);
	exec_request_clear(&r);
	static const char *const bad[] = {"{}",
					  "{\"args\":[]}",
					  "{\"args\":[\"\"]}",
					  "{\"args\":[\"x\"],\"env\":[\"=1\"]}",
					  "{\"args\":[\"x\"],\"env\":[\"NOEQ\"]}",
					  "{\"args\":[\"x\"],\"cwd\":\"rel\"}",
					  "{\"args\":[\"x\"],\"user\":\"\"}",
					  "[\"x\"]",
					  "{\"args\":[1]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(exec_request_parse(bad[i], strlen(bad[i]), &r, &err), -1);
	/* More arguments than the bound. */
	size_t cap = 16 * (EXEC_ARGS_MAX + 10);
	char *big = malloc(cap);
	size_t n = (size_t)snprintf(big, cap, "{\"args\":[");
	for (int i = 0; i < EXEC_ARGS_MAX + 1; i++)
		n += (size_t)snprintf(big + n, cap - n, "%s\"a\"", i ? "," : "");
	n += (size_t)snprintf(big + n, cap - n, "]}");
	assert_int_equal(exec_request_parse(big, n, &r, &err), -1);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(cmd_and_cmd_shell_become_argv),
	    cmocka_unit_test(docker_defaults_apply_to_what_is_not_given),
	    cmocka_unit_test(the_module_check_goes_over_the_image_field_by_field),
	    cmocka_unit_test(bad_checks_are_refused_naming_the_field),
	    cmocka_unit_test(a_success_makes_it_healthy_and_resets_the_streak),
	    cmocka_unit_test(retries_failures_in_a_row_make_it_unhealthy),
	    cmocka_unit_test(failures_in_the_start_period_do_not_count_until_a_success),
	    cmocka_unit_test(the_start_interval_applies_only_while_starting),
	    cmocka_unit_test(exec_requests_are_bounded_and_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
