/* Mount option words (config.json, -o) to flags, propagation and data. */
#include "unit.h"

#include <string.h>
#include <sys/mount.h>

#include "shim/mountopt.h"

static int parse(const char *const *w, size_t n, struct mount_opts *o)
{
	struct berr err;
	return mount_opts_parse(w, n, o, &err);
}

static void flags_data_and_bind_are_separated(void **state)
{
	const char *w[] = {"nosuid", "ro", "rbind", "mode=755", "size=64k", "noexec"};
	struct mount_opts o;
	assert_int_equal(parse(w, 6, &o), 0);
	assert_int_equal(o.flags, MS_NOSUID | MS_RDONLY | MS_NOEXEC);
	assert_true(o.bind && o.recursive);
	assert_string_equal(o.data, "mode=755,size=64k");
}

static void later_words_override_earlier_ones(void **state)
{
	const char *w[] = {"ro", "nodev", "rw", "dev"};
	struct mount_opts o;
	assert_int_equal(parse(w, 4, &o), 0);
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.clear, MS_RDONLY | MS_NODEV);
}

static void propagation_words_set_propagation(void **state)
{
	const char *w[] = {"rslave"};
	struct mount_opts o;
	assert_int_equal(parse(w, 1, &o), 0);
	assert_int_equal(o.propagation, MS_SLAVE | MS_REC);
	assert_false(o.bind);
}

static void unsupported_words_are_refused_by_name(void **state)
{
	const char *w[] = {"nosuid", "idmap"};
	struct mount_opts o;
	struct berr err;
	assert_int_equal(mount_opts_parse(w, 2, &o, &err), -1);
	assert_non_null(strstr(err.msg, "\"idmap\""));
}

static void data_words_cannot_smuggle_options(void **state)
{
	const char *w[] = {"size=1m,suid"};
	struct mount_opts o;
	assert_int_equal(parse(w, 1, &o), -1);
	const char *e[] = {""};
	assert_int_equal(parse(e, 1, &o), -1);
	const char *ok[] = {"size=1m", "nosuid"};
	assert_int_equal(parse(ok, 2, &o), 0);
	assert_string_equal(o.data, "size=1m");
}

static void data_is_bounded_by_a_page(void **state)
{
	static char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	const char *w[] = {big, big};
	struct mount_opts o;
	assert_int_equal(parse(w, 2, &o), -1);
	assert_int_equal(parse(w, 1, &o), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(flags_data_and_bind_are_separated),
	    cmocka_unit_test(later_words_override_earlier_ones),
	    cmocka_unit_test(propagation_words_set_propagation),
	    cmocka_unit_test(unsupported_words_are_refused_by_name),
	    cmocka_unit_test(data_words_cannot_smuggle_options),
	    cmocka_unit_test(data_is_bounded_by_a_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
