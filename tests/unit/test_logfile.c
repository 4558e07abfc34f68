/* The detached instance's log: each line stamped with its arrival,
 * size-bounded, rotated to log.1; and what `berth logs` shows of it. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "shim/logfile.h"

/* 2024-05-01T12:00:00Z, and the stamp it gives. */
#define T0    1714564800000000000LL
#define STAMP "2024-05-01T12:00:00.000000000Z "

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
	assert_int_equal(logfile_write_at(&lf, "hello\n", 6, T0, &err), 0);
	logfile_close(&lf);
	size_t len;
	char *d = slurp("log", &len);
	assert_string_equal(d, STAMP "hello\n");
	free(d);
	assert_null(slurp("log.1", &len));
	close(dfd);
}

static void rotation_keeps_each_file_within_the_limit(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct logfile lf;
	struct berr err;
	/* Room for two stamped lines of 4 bytes: 2 * (31 + 4). */
	assert_int_equal(logfile_open(&lf, dfd, 70, &err), 0);
	assert_int_equal(logfile_write_at(&lf, "one\ntwo\n", 8, T0, &err), 0);
	/* A line that would not fit goes whole into the new log. */
	assert_int_equal(logfile_write_at(&lf, "thr", 3, T0, &err), 0);
	assert_int_equal(logfile_write_at(&lf, "ee\n", 3, T0 + 1, &err), 0);
	logfile_close(&lf);
	size_t l0, l1;
	char *cur = slurp("log", &l0), *old = slurp("log.1", &l1);
	assert_string_equal(old, STAMP "one\n" STAMP "two\n");
	/* The rest of a line goes on without a stamp of its own. */
	assert_string_equal(cur, STAMP "three\n");
	free(cur);
	free(old);
	/* A line longer than a whole log is cut across files. */
	assert_int_equal(logfile_open(&lf, dfd, 40, &err), 0);
	char big[100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(logfile_write_at(&lf, big, sizeof(big), T0, &err), 0);
	logfile_close(&lf);
	struct stat st;
	char p[128];
	snprintf(p, sizeof(p), "%s/log", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size <= 40);
	close(dfd);
}

static void reopening_goes_on_with_a_line_begun_before(void **state)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct logfile lf;
	struct berr err;
	assert_int_equal(logfile_open(&lf, dfd, 1000, &err), 0);
	assert_int_equal(logfile_write_at(&lf, "abc", 3, T0, &err), 0);
	logfile_close(&lf);
	assert_int_equal(logfile_open(&lf, dfd, 1000, &err), 0);
	assert_int_equal(lf.size, LOG_STAMP_LEN + 3);
	assert_int_equal(logfile_write_at(&lf, "def\nghi\n", 8, T0, &err), 0);
	logfile_close(&lf);
	size_t l0;
	char *cur = slurp("log", &l0);
	assert_string_equal(cur, STAMP "abcdef\n" STAMP "ghi\n");
	free(cur);
	close(dfd);
}

static void stamps_read_back_and_odd_ones_are_refused(void **state)
{
	char s[LOG_STAMP_LEN + 1];
	log_stamp_format(T0 + 123456789, s);
	assert_string_equal(s, "2024-05-01T12:00:00.123456789Z ");
	int64_t t;
	assert_int_equal(log_stamp_parse(s, LOG_STAMP_LEN, &t), 0);
	assert_int_equal(t, T0 + 123456789);
	assert_int_equal(log_stamp_parse(s, LOG_STAMP_LEN - 1, &t), -1);
	assert_int_equal(log_stamp_parse("2024-13-01T12:00:00.123456789Z ", LOG_STAMP_LEN, &t), -1);
	assert_int_equal(log_stamp_parse("hello world, not a stamp at all", LOG_STAMP_LEN, &t), -1);
}

static void gather(void *arg, const char *p, size_t n)
{
	strncat(arg, p, n);
}

static void feed_bytewise(struct log_filter *f, const char *text, char *out)
{
	for (size_t i = 0; text[i]; i++)
		log_filter_feed(f, text + i, 1, gather, out);
}

#define L(sec, text) "2024-05-01T12:00:0" #sec ".000000000Z " text "\n"

static void the_filter_selects_lines_by_time_and_strips_stamps(void **state)
{
	const char *log = L(1, "one") L(2, "two") L(3, "three") "unstamped\n";
	struct log_filter f;
	char out[512] = "";
	log_filter_init(&f, 0, 0, false);
	log_filter_feed(&f, log, strlen(log), gather, out);
	assert_string_equal(out, "one\ntwo\nthree\nunstamped\n");
	/* since is inclusive, until exclusive; unstamped lines need no bounds. */
	out[0] = '\0';
	log_filter_init(&f, T0 + 2000000000LL, T0 + 3000000000LL, false);
	feed_bytewise(&f, log, out);
	assert_string_equal(out, "two\n");
	out[0] = '\0';
	log_filter_init(&f, T0 + 3000000000LL, 0, true);
	feed_bytewise(&f, log, out);
	assert_string_equal(out, L(3, "three"));
	/* A short line without a stamp is shown as it is. */
	out[0] = '\0';
	log_filter_init(&f, 0, 0, true);
	log_filter_feed(&f, "x\n\n", 3, gather, out);
	assert_string_equal(out, "x\n\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(writes_below_the_limit_stay_in_log, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(rotation_keeps_each_file_within_the_limit, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(reopening_goes_on_with_a_line_begun_before, make_dir,
					    remove_dir),
	    cmocka_unit_test(stamps_read_back_and_odd_ones_are_refused),
	    cmocka_unit_test(the_filter_selects_lines_by_time_and_strips_stamps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
