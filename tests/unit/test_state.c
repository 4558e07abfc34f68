/* state.json: round trip, liveness of the shim, hostile content. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "shim/state.h"

static char root[64];
static char dir[128];

static int make_root(void **state)
{
	snprintf(root, sizeof(root), "/tmp/berth-state-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(dir, sizeof(dir), "%s/instances/one", root);
	struct berr err;
	return fs_mkdir_p(dir, 0700, &err);
}

static int remove_root(void **state)
{
	struct berr err;
	return fs_remove_tree(root, &err);
}

static void a_running_state_with_a_live_shim_reads_back(void **state)
{
	struct instance_state st = {.status = INSTANCE_RUNNING,
				    .shim_pid = getpid(),
				    .shim_start_time = proc_start_time(getpid()),
				    .pid = 4242,
				    .started_at = 1700000000000};
	struct berr err;
	assert_int_equal(state_write(dir, &st, &err), 0);
	struct instance_state back;
	assert_int_equal(shim_state_read(root, "one", &back, &err), 0);
	assert_int_equal(back.status, INSTANCE_RUNNING);
	assert_int_equal(back.pid, 4242);
	assert_int_equal(back.started_at, 1700000000000);
	assert_true(shim_alive(&back));
}

static void a_dead_shim_reads_as_exited_255(void **state)
{
	/* A start time that is not this process's: a reused pid. */
	struct instance_state st = {.status = INSTANCE_RUNNING,
				    .shim_pid = getpid(),
				    .shim_start_time = proc_start_time(getpid()) + 1};
	struct berr err;
	assert_int_equal(state_write(dir, &st, &err), 0);
	struct instance_state back;
	assert_int_equal(shim_state_read(root, "one", &back, &err), 0);
	assert_false(shim_alive(&back));
	assert_int_equal(back.status, INSTANCE_EXITED);
	assert_int_equal(back.exit_code, 255);
	assert_non_null(strstr(back.error, "died without recording"));
}

static void an_exit_is_kept_as_recorded(void **state)
{
	struct instance_state st = {.status = INSTANCE_EXITED,
				    .exit_code = 137,
				    .exit_signal = 9,
				    .oom_killed = true,
				    .finished_at = 5};
	snprintf(st.error, sizeof(st.error), "out of memory");
	struct berr err;
	assert_int_equal(state_write(dir, &st, &err), 0);
	struct instance_state back;
	assert_int_equal(shim_state_read(root, "one", &back, &err), 0);
	assert_int_equal(back.status, INSTANCE_EXITED);
	assert_int_equal(back.exit_code, 137);
	assert_int_equal(back.exit_signal, 9);
	assert_true(back.oom_killed);
	assert_string_equal(back.error, "out of memory");
}

static void hostile_states_are_refused(void **state)
{
	struct instance_state st;
	struct berr err;
	const char *bad[] = {"{\"status\":\"running\",\"exit_code\":999}",
			     "{\"status\":\"running\",\"shim_pid\":-1}", "{\"pid\":1}", "[1]",
			     "{\"status\":\"running\",\"error\":7}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(state_parse(bad[i], strlen(bad[i]), "state", &st, &err), -1);
	assert_int_equal(shim_state_read(root, "../one", &st, &err), -1);
	assert_int_equal(shim_state_read(root, "missing", &st, &err), -1);
	assert_int_equal(st.status, INSTANCE_UNKNOWN);
}

static void no_process_is_alive_without_a_pid(void **state)
{
	struct instance_state st = {0};
	assert_false(shim_alive(&st));
	assert_int_equal(proc_start_time(0), -1);
	/* The control: with this process's pid and start time, it is alive. */
	st.shim_pid = getpid();
	st.shim_start_time = proc_start_time(getpid());
	assert_true(st.shim_start_time > 0);
	assert_true(shim_alive(&st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_running_state_with_a_live_shim_reads_back, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(a_dead_shim_reads_as_exited_255, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(an_exit_is_kept_as_recorded, make_root, remove_root),
	    cmocka_unit_test_setup_teardown(hostile_states_are_refused, make_root, remove_root),
	    cmocka_unit_test(no_process_is_alive_without_a_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
