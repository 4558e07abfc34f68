/* The detached instance's log: size-bounded, rotated to log.1. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "shim/logfile.h"

static char dir[64];

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/berth-log-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	struct berr err;
	return fs_remove_tree(dir, &err);
}

static char *slurp(const char *name, size_t *len)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	char *data = NULL;
	struct berr err;
	if (fs_read_file(p, 1 << 20, &data, len, &err) < 0)
		return NULL;
	return data;
}

static void writes_below_the_limit_stay_in_log(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct logfile lf;
	struct berr err;
	assert_int_equal(logfile_open(&lf, dfd, 100, &err), 0);
	assert_int_equal(logfile_write(&lf, "hello\n", 6, &err), 0);
	logfile_close(&lf);
	size_t len;
	char *d = slurp("log", &len);
	assert_string_equal(d, "hello\n");
	free(d);
	assert_null(slurp("log.1", &len));
	close(dfd);
}

static void rotation_keeps_each_file_within_the_limit(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct logfile lf;
	struct berr err;
	assert_int_equal(logfile_open(&lf, dfd, 10, &err), 0);
	/* 25 bytes in writes that straddle the boundary. */
	assert_int_equal(logfile_write(&lf, "0123456", 7, &err), 0);
	assert_int_equal(logfile_write(&lf, "789abcdefghij", 13, &err), 0);
	assert_int_equal(logfile_write(&lf, "klmno", 5, &err), 0);
	logfile_close(&lf);
	size_t l0, l1;
	char *cur = slurp("log", &l0), *old = slurp("log.1", &l1);
	/* log.1 holds the previous 10 bytes, log the last 5: the first 10 went. */
	assert_string_equal(old, "abcdefghij");
	assert_string_equal(cur, "klmno");
	free(cur);
	free(old);
	close(dfd);
}

static void reopening_appends_to_the_existing_log(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct logfile lf;
	struct berr err;
	assert_int_equal(logfile_open(&lf, dfd, 8, &err), 0);
	assert_int_equal(logfile_write(&lf, "abcde", 5, &err), 0);
	logfile_close(&lf);
	assert_int_equal(logfile_open(&lf, dfd, 8, &err), 0);
	assert_int_equal(lf.size, 5);
	assert_int_equal(logfile_write(&lf, "fghij", 5, &err), 0);
	logfile_close(&lf);
	size_t l0, l1;
	char *cur = slurp("log", &l0), *old = slurp("log.1", &l1);
	assert_string_equal(old, "abcdefgh");
	assert_string_equal(cur, "ij");
	free(cur);
	free(old);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(writes_below_the_limit_stay_in_log, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(rotation_keeps_each_file_within_the_limit, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(reopening_appends_to_the_existing_log, make_dir,
					    remove_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
