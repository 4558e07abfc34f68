/* common/lazy: every library loads and every function of its list resolves,
 * and loading is refused where it would be wrong (after a fork taken while
 * other threads ran, after lazy_seal), loudly. The refusals are checked in
 * forked children of a process that has loaded nothing yet; the test that
 * loads everything runs last. */
#include "unit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "child.h"
#include "common/lazy.h"

static void load_cap(void *arg)
{
	struct berr err;
	CHILD_CHECK(lazy_require(LAZY_CAP, &err) == 0);
	CHILD_CHECK(lazy_fns[LAZY_SYM_cap_init] != NULL);
}

static void a_single_threaded_fork_may_load(void **state)
{
	int st = child_run(load_cap, NULL);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void *park(void *arg)
{
	int *fd = arg;
	char c;
	while (read(*fd, &c, 1) < 0)
		;
	return NULL;
}

static void refuse_cap(void *arg)
{
	struct berr err;
	CHILD_CHECK(lazy_require(LAZY_CAP, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "libcap") != NULL);
	CHILD_CHECK(strstr(err.msg, "after a fork() taken while other threads ran") != NULL);
	/* What was loaded before the fork keeps working. */
	CHILD_CHECK(lazy_require(LAZY_M, &err) == 0);
	CHILD_CHECK(LAZY(sqrt)(16.0) == 4.0);
}

/* The number of threads /proc/self/stat shows (field 20), which the check
 * reads: qemu-user writes 0 there, as it fills only a few of the fields. */
static long stat_threads(void)
{
	char buf[1024] = "";
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++)
		p = strchr(p + 1, ' ');
	return p ? strtol(p + 1, NULL, 10) : 0;
}

static void a_fork_taken_while_threads_run_loads_nothing(void **state)
{
	if (stat_threads() < 1) {
		printf("    skipped: /proc/self/stat shows no thread count (qemu-user)\n");
		skip();
	}
	struct berr err;
	assert_int_equal(lazy_require(LAZY_M, &err), 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, park, &p[0]), 0);
	int st = child_run(refuse_cap, NULL);
	assert_int_equal(write(p[1], "x", 1), 1);
	pthread_join(t, NULL);
	close(p[0]);
	close(p[1]);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Positive control: with the thread gone, a fork may load again. */
	st = child_run(load_cap, NULL);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void sealed_call(void *arg)
{
	lazy_seal("pivot_root into the instance's root");
	struct berr err;
	CHILD_CHECK(lazy_require(LAZY_ZSTD, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "after pivot_root into the instance's root") != NULL);
	/* A call that would load exits with 127 and says why. */
	LAZY(ZSTD_isError)(0);
	_exit(0);
}

static void a_sealed_process_exits_127_instead_of_loading(void **state)
{
	int err_pipe[2];
	assert_int_equal(pipe(err_pipe), 0);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(err_pipe[1], 2);
		sealed_call(NULL);
	}
	close(err_pipe[1]);
	char msg[512] = "";
	ssize_t n = read(err_pipe[0], msg, sizeof(msg) - 1);
	close(err_pipe[0]);
	msg[n > 0 ? n : 0] = '\0';
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 127);
	assert_non_null(strstr(msg, "ZSTD_isError"));
	assert_non_null(strstr(msg, "cannot load libzstd"));
}

static void every_library_loads_and_every_function_resolves(void **state)
{
	size_t checked = 0, skipped = 0;
	for (int lib = 0; lib < LAZY_COUNT; lib++) {
		struct berr err;
		int rc = lazy_require((enum lazy_lib)lib, &err);
#ifndef HAVE_ISAL
		if (lib == LAZY_ISAL && rc < 0) {
			/* Optional: the build did not find it, and it is not here. */
			printf("    skipped %s: %s\n", lazy_soname(LAZY_ISAL), err.msg);
			for (int s = 0; s < LAZY_SYM_COUNT; s++)
				skipped += lazy_sym_lib((enum lazy_sym)s) == LAZY_ISAL;
			continue;
		}
#endif
		if (rc < 0)
			fail_msg("%s", err.msg);
		for (int s = 0; s < LAZY_SYM_COUNT; s++)
			if (lazy_sym_lib((enum lazy_sym)s) == (enum lazy_lib)lib) {
				if (!lazy_fns[s])
					fail_msg("%s: %s not resolved",
						 lazy_soname((enum lazy_lib)lib),
						 lazy_sym_name((enum lazy_sym)s));
				checked++;
			}
	}
	assert_int_equal(checked + skipped, LAZY_SYM_COUNT);
	/* Calls go to the library's own function. */
	assert_true(LAZY(pow)(2.0, 10.0) == 1024.0);
	assert_true(LAZY(fmod)(7.0, 4.0) == 3.0);
}

static void symbols_belong_to_their_lists(void **state)
{
	assert_int_equal(lazy_sym_lib(LAZY_SYM_EVP_MD_CTX_new), LAZY_CRYPTO);
	assert_int_equal(lazy_sym_lib(LAZY_SYM_curl_multi_strerror), LAZY_CURL);
	assert_int_equal(lazy_sym_lib(LAZY_SYM_mosquitto_lib_init), LAZY_MOSQUITTO);
	assert_int_equal(lazy_sym_lib(LAZY_SYM_fmod), LAZY_M);
	assert_string_equal(lazy_sym_name(LAZY_SYM_inflateInit2_), "inflateInit2_");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(symbols_belong_to_their_lists),
	    cmocka_unit_test(a_single_threaded_fork_may_load),
	    cmocka_unit_test(a_fork_taken_while_threads_run_loads_nothing),
	    cmocka_unit_test(a_sealed_process_exits_127_instead_of_loading),
	    cmocka_unit_test(every_library_loads_and_every_function_resolves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
