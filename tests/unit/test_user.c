/* Users and groups resolved against an image's /etc/passwd and /etc/group. */
#include "unit.h"

#include <string.h>

#include "shim/user.h"

static const char *passwd = "root:x:0:0:root:/root:/bin/sh\n"
			    "# comment\n"
			    "broken line without colons\n"
			    "app:x:1000:1000:App:/home/app:/bin/sh\n"
			    "svc:x:2000:3000::/srv:/bin/false\n"
			    "bad:x:notanumber:1::/:/bin/sh\n";
static const char *group = "root:x:0:\n"
			   "app:x:1000:\n"
			   "video:x:44:app,svc\n"
			   "audio:x:29:other,app\n"
			   "daemon:x:3000:\n"
			   "staff:x:50:\n";

static void empty_user_is_root_with_its_home(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve(NULL, passwd, group, &u, &err), 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_string_equal(u.home, "/root");
}

static void name_gives_uid_gid_home_and_groups(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("app", passwd, group, &u, &err), 0);
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_string_equal(u.home, "/home/app");
	assert_int_equal(u.n_groups, 3);
	assert_int_equal(u.groups[0], 1000);
	assert_int_equal(u.groups[1], 44);
	assert_int_equal(u.groups[2], 29);
}

static void number_without_entry_gets_group_0(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("4242", passwd, group, &u, &err), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 0);
	assert_string_equal(u.home, "/");
}

static void number_with_entry_takes_its_group(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("2000", passwd, group, &u, &err), 0);
	assert_int_equal(u.gid, 3000);
	assert_string_equal(u.home, "/srv");
	assert_int_equal(u.n_groups, 2); /* daemon (primary), video */
}

static void explicit_group_by_name_or_number_is_the_only_group(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("app:staff", passwd, group, &u, &err), 0);
	assert_int_equal(u.gid, 50);
	assert_int_equal(u.n_groups, 0);
	assert_int_equal(user_resolve("app:77", passwd, group, &u, &err), 0);
	assert_int_equal(u.gid, 77);
}

static void unknown_names_are_errors_naming_them(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("ghost", passwd, group, &u, &err), -1);
	assert_non_null(strstr(err.msg, "\"ghost\""));
	assert_int_equal(user_resolve("app:nogroup", passwd, group, &u, &err), -1);
	assert_non_null(strstr(err.msg, "\"nogroup\""));
	assert_int_equal(user_resolve("bad", passwd, group, &u, &err), -1);
}

static void missing_files_allow_numbers_only(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve("12:34", NULL, NULL, &u, &err), 0);
	assert_int_equal(u.uid, 12);
	assert_int_equal(u.gid, 34);
	assert_int_equal(user_resolve("app", NULL, NULL, &u, &err), -1);
}

static void malformed_specs_are_refused(void **state)
{
	struct user_ids u;
	struct berr err;
	assert_int_equal(user_resolve(":", passwd, group, &u, &err), -1);
	assert_int_equal(user_resolve("app:", passwd, group, &u, &err), -1);
	assert_int_equal(user_resolve(":1", passwd, group, &u, &err), -1);
	/* 2^32 - 1 is (uid_t)-1, never a user. */
	assert_int_equal(user_resolve("4294967295", passwd, group, &u, &err), -1);
	assert_int_equal(user_resolve("4294967294", passwd, group, &u, &err), 0);
	assert_int_equal(u.uid, 4294967294u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_user_is_root_with_its_home),
	    cmocka_unit_test(name_gives_uid_gid_home_and_groups),
	    cmocka_unit_test(number_without_entry_gets_group_0),
	    cmocka_unit_test(number_with_entry_takes_its_group),
	    cmocka_unit_test(explicit_group_by_name_or_number_is_the_only_group),
	    cmocka_unit_test(unknown_names_are_errors_naming_them),
	    cmocka_unit_test(missing_files_allow_numbers_only),
	    cmocka_unit_test(malformed_specs_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
