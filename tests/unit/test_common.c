/* common/: encodings, JSON bounds, digests, names, mountinfo lines, string
 * copies, and paths resolved inside a root. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/mountinfo.h"
#include "common/names.h"
#include "common/strbuf.h"
#include "common/strv.h"

static void base64_round_trips(void **state)
{
	const char *in = "any carnal pleas";
	char enc[64];
	unsigned char dec[64];
	for (size_t n = 0; n <= strlen(in); n++) {
		assert_true(base64_encode(in, n, enc, sizeof(enc)) >= 0);
		int d = base64_decode(enc, strlen(enc), dec, sizeof(dec));
		assert_int_equal(d, (int)n);
		assert_memory_equal(dec, in, n);
	}
	assert_int_equal(base64_encode("any", 3, enc, sizeof(enc)), 4);
	assert_string_equal(enc, "YW55");
}

static void base64_refuses_invalid_characters(void **state)
{
	unsigned char out[16];
	assert_int_equal(base64_decode("YW5*", 4, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("Y", 1, out, sizeof(out)), -1);
	assert_int_equal(base64_decode("YW5k", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "and", 3);
}

static void url_encode_keeps_unreserved_only(void **state)
{
	char out[64];
	assert_true(url_encode("a b/c~d=e&", 10, out, sizeof(out)) > 0);
	assert_string_equal(out, "a%20b%2Fc~d%3De%26");
}

static void url_decode_refuses_bad_escapes_and_nul(void **state)
{
	char out[64];
	assert_int_equal(url_decode("%2", 2, out, sizeof(out), false), -1);
	assert_int_equal(url_decode("%zz", 3, out, sizeof(out), false), -1);
	assert_int_equal(url_decode("a%00b", 5, out, sizeof(out), false), -1);
	assert_int_equal(url_decode("a%2Fb+c", 7, out, sizeof(out), true), 5);
	assert_string_equal(out, "a/b c");
}

static void json_parse_refuses_deep_nesting(void **state)
{
	char buf[200];
	memset(buf, '[', 100);
	memset(buf + 100, ']', 100);
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse(buf, sizeof(buf), 1024, "doc", &v, &err), -1);
	assert_non_null(strstr(err.msg, "nested"));
}

static void json_parse_refuses_oversized_input(void **state)
{
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse("{\"a\": 1}", 8, 4, "doc", &v, &err), -1);
	assert_non_null(strstr(err.msg, "over the limit"));
}

static void json_parse_limited_counts_values_outside_strings(void **state)
{
	/* 4 values: the object, the array and its two numbers; the commas and
	 * brackets inside the string are not values. */
	const char *doc = "{\"a\":[1,2],\"s\":\"[,,{,\\\",]\"}";
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse_limited(doc, strlen(doc), 1024, 5, "doc", &v, &err), 0);
	yajl_tree_free(v);
	assert_int_equal(json_parse_limited(doc, strlen(doc), 1024, 3, "doc", &v, &err), -1);
	assert_string_equal(err.msg, "doc: more than 3 values");
}

static void json_errors_name_the_path(void **state)
{
	yajl_val v;
	struct berr err;
	const char *doc = "{\"a\": 5}";
	assert_int_equal(json_parse(doc, strlen(doc), 1024, "doc", &v, &err), 0);
	const char *s;
	assert_int_equal(json_get_str(v, "a", "$.x", true, &s, &err), -1);
	assert_string_equal(err.msg, "$.x.a: expected a string");
	assert_int_equal(json_get_str(v, "b", "$.x", true, &s, &err), -1);
	assert_string_equal(err.msg, "$.x.b: required but missing");
	yajl_tree_free(v);
}

static void json_gen_val_round_trips(void **state)
{
	const char *doc = "{\"a\":[1,2.5,\"x\",true,null],\"b\":{\"c\":-7}}";
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse(doc, strlen(doc), 1024, "doc", &v, &err), 0);
	yajl_gen g = json_gen_new(false);
	assert_int_equal(json_gen_val(g, v), 0);
	char *out = json_gen_finish(g, NULL);
	assert_string_equal(out, doc);
	free(out);
	yajl_gen_free(g);
	yajl_tree_free(v);
}

static void digest_validates_form(void **state)
{
	assert_true(digest_is_valid(
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(digest_is_valid("sha256:E3B0"));
	assert_false(digest_is_valid("md5:abc"));
	assert_false(digest_is_valid(
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/"));
}

static void digest_of_empty_input(void **state)
{
	char d[DIGEST_STR_MAX];
	digest_sha256("", 0, d);
	assert_string_equal(
	    d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void json_get_i64_leaves_absent_members_alone(void **state)
{
	yajl_val v;
	struct berr err;
	const char *doc = "{\"n\":-5,\"s\":\"x\"}";
	assert_int_equal(json_parse(doc, strlen(doc), 100, "doc", &v, &err), 0);
	int64_t n = 7;
	assert_int_equal(json_get_i64(v, "absent", "doc", false, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_int_equal(json_get_i64(v, "n", "doc", true, &n, &err), 0);
	assert_int_equal(n, -5);
	assert_int_equal(json_get_i64(v, "s", "doc", false, &n, &err), -1);
	assert_string_equal(err.msg, "doc.s: expected an integer");
	assert_int_equal(json_get_i64(v, "absent", "doc", true, &n, &err), -1);
	yajl_tree_free(v);
}

static void fnv1a_matches_the_reference_values(void **state)
{
	assert_true(fnv1a(FNV1A_INIT, "", 0) == UINT64_C(0xcbf29ce484222325));
	assert_true(fnv1a(FNV1A_INIT, "a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	assert_true(fnv1a(FNV1A_INIT, "foobar", 6) == UINT64_C(0x85944171f73967e8));
	/* Chained calls hash the concatenation. */
	assert_true(fnv1a(fnv1a(FNV1A_INIT, "foo", 3), "bar", 3) == fnv1a(FNV1A_INIT, "foobar", 6));
}

static void names_follow_one_rule_each(void **state)
{
	assert_true(name_valid("Web_1.b-2", 9, INSTANCE_NAME_MAX));
	assert_false(name_valid("-x", 2, INSTANCE_NAME_MAX));
	assert_false(name_valid("a/b", 3, INSTANCE_NAME_MAX));
	assert_false(name_valid("", 0, INSTANCE_NAME_MAX));
	assert_false(name_valid("abc", 3, 2));
	/* Only len bytes count: the rest of the string is not looked at. */
	assert_true(name_valid("ab/c", 2, INSTANCE_NAME_MAX));
	assert_true(hostname_valid("edge-1.local_x", 64));
	assert_false(hostname_valid("a b", 64));
	assert_false(hostname_valid("a:1", 64));
	assert_false(hostname_valid("", 64));
	assert_true(chars_valid("[::1]:5000", "-.:[]", 255));
	assert_false(chars_valid("a_b", "-.", 255));
}

static void mountinfo_lines_are_split_and_unescaped(void **state)
{
	char line[] = "36 35 98:0 /mnt\\0401 /a\\040b rw,noatime master:1 shared:2 - cgroup cg "
		      "rw,memory,name=x,clone_children";
	struct mountinfo_entry e;
	assert_int_equal(mountinfo_parse_line(line, &e), 0);
	assert_string_equal(e.root, "/mnt 1");
	assert_string_equal(e.mount_point, "/a b");
	assert_string_equal(e.options, "rw,noatime");
	assert_string_equal(e.fstype, "cgroup");
	assert_string_equal(e.source, "cg");
	assert_string_equal(e.super_options, "rw,memory,name=x,clone_children");
	char short_line[] = "36 35 98:0 / /a rw - cgroup";
	assert_int_equal(mountinfo_parse_line(short_line, &e), -1);
	char no_sep[] = "36 35 98:0 / /a rw cgroup cg rw";
	assert_int_equal(mountinfo_parse_line(no_sep, &e), -1);
}

static bool keep_short(const char *item, size_t len)
{
	(void)item;
	return len <= 6;
}

static void mountinfo_options_are_filtered(void **state)
{
	char out[16];
	mountinfo_filter_options("rw,memory,clone_children,name=x", keep_short, out, sizeof(out));
	assert_string_equal(out, "rw,memory");
	/* What does not fit is left out, never cut. */
	mountinfo_filter_options("rw,memory,cpuset", keep_short, out, 10);
	assert_string_equal(out, "rw,memory");
	mountinfo_filter_options("", keep_short, out, sizeof(out));
	assert_string_equal(out, "");
}

static void copies_share_one_ok_flag(void **state)
{
	bool ok = true;
	assert_null(dup_or_null(NULL, &ok));
	assert_true(ok);
	char *d = dup_or_null("x", &ok);
	assert_string_equal(d, "x");
	free(d);
	char *const v[] = {"a", "b", NULL};
	char **c = strv_dup(v, &ok);
	assert_int_equal(strv_len(c), 2);
	strv_free(c);
	assert_true(ok);
	/* A failure recorded earlier is never cleared by a later copy. */
	ok = false;
	c = strv_dup(v, &ok);
	d = dup_or_null("y", &ok);
	assert_false(ok);
	strv_free(c);
	free(d);
	assert_null(strv_dup(NULL, &ok));
}

static void berr_wrap_adds_context_in_front(void **state)
{
	struct berr err;
	berr_set(&err, ENOENT, "open %s", "/etc/x");
	berr_wrap(&err, "config %s", "/etc/x");
	assert_string_equal(err.msg, "config /etc/x: open /etc/x: No such file or directory");
	assert_int_equal(err.code, ENOENT);
}

static void a_truncated_error_keeps_its_context_and_its_root_cause(void **state)
{
	struct berr err;
	char path[3000];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	berr_set(&err, EACCES, "open %s", path);
	assert_true(strlen(err.msg) < BERR_MSG_MAX);
	assert_non_null(strstr(err.msg, "..."));
	assert_true(!strncmp(err.msg, "open ppp", 8));
	const char *cause = ": Permission denied";
	assert_string_equal(err.msg + strlen(err.msg) - strlen(cause), cause);
	for (int i = 0; i < 5; i++)
		berr_wrap(&err, "pull registry.example/app:%d", i);
	assert_true(strlen(err.msg) < BERR_MSG_MAX);
	assert_true(!strncmp(err.msg, "pull registry.example/app:4: pull", 33));
	assert_string_equal(err.msg + strlen(err.msg) - strlen(cause), cause);
}

static void a_truncated_error_cuts_whole_characters(void **state)
{
	struct berr err;
	char name[1400] = "";
	/* "ä" is two bytes: a cut anywhere must not split one. */
	for (size_t i = 0; i + 2 < sizeof(name); i += 2)
		strcat(name, "\xc3\xa4");
	for (int shift = 0; shift < 2; shift++) {
		berr_set(&err, 0, "%.*s%s: bad", shift, "x", name);
		assert_non_null(strstr(err.msg, "..."));
		const unsigned char *m = (const unsigned char *)err.msg;
		for (size_t i = 0; m[i]; i++)
			if (m[i] == 0xc3)
				assert_int_equal(m[i + 1], 0xa4);
			else if (m[i] == 0xa4)
				assert_true(i > 0 && m[i - 1] == 0xc3);
		assert_string_equal(err.msg + strlen(err.msg) - 5, ": bad");
	}
}

static void strbuf_respects_its_cap(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	sb.max = 8;
	assert_int_equal(strbuf_puts(&sb, "12345678"), 0);
	assert_int_equal(strbuf_puts(&sb, "9"), -1);
	assert_int_equal(errno, EFBIG);
	assert_string_equal(sb.buf, "12345678");
	strbuf_release(&sb);
}

/* A root holding an absolute symlink to /etc and a relative one climbing out:
 * both must resolve inside the root. */
static char root_dir[64];

static int make_root(void **state)
{
	strcpy(root_dir, "/tmp/berth-unit-XXXXXX");
	assert_non_null(mkdtemp(root_dir));
	char p[128];
	snprintf(p, sizeof(p), "%s/etc", root_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/etc/passwd", root_dir);
	FILE *f = fopen(p, "w");
	fputs("inside\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/abs", root_dir);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/up", root_dir);
	assert_int_equal(symlink("../../../../etc", p), 0);
	return 0;
}

static int remove_root(void **state)
{
	struct berr err;
	return fs_remove_tree(root_dir, &err);
}

static void read_through(const char *path, char *out, size_t cap)
{
	struct berr err;
	int root = open(root_dir, O_RDONLY | O_DIRECTORY);
	int fd = fs_open_in_root(root, path, O_RDONLY, 0, &err);
	assert_true(fd >= 0);
	ssize_t n = read(fd, out, cap - 1);
	assert_true(n > 0);
	out[n] = '\0';
	close(fd);
	close(root);
}

static void open_in_root_keeps_absolute_symlinks_inside(void **state)
{
	char buf[64];
	read_through("abs/passwd", buf, sizeof(buf));
	assert_string_equal(buf, "inside\n");
}

static void open_in_root_keeps_dotdot_inside(void **state)
{
	char buf[64];
	read_through("up/passwd", buf, sizeof(buf));
	assert_string_equal(buf, "inside\n");
	read_through("/../../etc/passwd", buf, sizeof(buf));
	assert_string_equal(buf, "inside\n");
}

static void open_parent_creates_directories_inside(void **state)
{
	struct berr err;
	int root = open(root_dir, O_RDONLY | O_DIRECTORY);
	const char *base;
	int d = fs_open_parent_in_root(root, "abs/new/deeper/file", true, &base, &err);
	assert_true(d >= 0);
	assert_string_equal(base, "file");
	close(d);
	close(root);
	char p[128];
	struct stat st;
	snprintf(p, sizeof(p), "%s/etc/new/deeper", root_dir);
	assert_int_equal(stat(p, &st), 0);
}

static void time_arguments_read_as_docker_logs_reads_them(void **state)
{
	const int64_t now = 1714564800LL * 1000000000LL; /* 2024-05-01T12:00:00Z */
	int64_t t;
	assert_int_equal(time_arg_parse("10m", now, &t), 0);
	assert_int_equal(t, now - 600LL * 1000000000LL);
	assert_int_equal(time_arg_parse("1h30m", now, &t), 0);
	assert_int_equal(t, now - 5400LL * 1000000000LL);
	assert_int_equal(time_arg_parse("1.5s", now, &t), 0);
	assert_int_equal(t, now - 1500000000LL);
	assert_int_equal(time_arg_parse("250ms", now, &t), 0);
	assert_int_equal(t, now - 250000000LL);
	assert_int_equal(time_arg_parse("1714560000", now, &t), 0);
	assert_int_equal(t, 1714560000LL * 1000000000LL);
	assert_int_equal(time_arg_parse("1714560000.25", now, &t), 0);
	assert_int_equal(t, 1714560000250000000LL);
	assert_int_equal(time_arg_parse("2024-05-01T11:00:00Z", now, &t), 0);
	assert_int_equal(t, now - 3600LL * 1000000000LL);
	assert_int_equal(time_arg_parse("2024-05-01T13:00:00.5+02:00", now, &t), 0);
	assert_int_equal(t, now - 3600LL * 1000000000LL + 500000000LL);
	static const char *const bad[] = {"",
					  "m",
					  "10x",
					  "1h30",
					  "2024-5-1",
					  "2024-13-01",
					  "2024-05-01T25:00Z",
					  "-5m",
					  "2024-05-01T12:00:00Zjunk",
					  "."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(time_arg_parse(bad[i], now, &t), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(base64_round_trips),
	    cmocka_unit_test(base64_refuses_invalid_characters),
	    cmocka_unit_test(url_encode_keeps_unreserved_only),
	    cmocka_unit_test(url_decode_refuses_bad_escapes_and_nul),
	    cmocka_unit_test(json_parse_refuses_deep_nesting),
	    cmocka_unit_test(json_parse_refuses_oversized_input),
	    cmocka_unit_test(json_parse_limited_counts_values_outside_strings),
	    cmocka_unit_test(json_errors_name_the_path),
	    cmocka_unit_test(json_gen_val_round_trips),
	    cmocka_unit_test(digest_validates_form),
	    cmocka_unit_test(digest_of_empty_input),
	    cmocka_unit_test(strbuf_respects_its_cap),
	    cmocka_unit_test(berr_wrap_adds_context_in_front),
	    cmocka_unit_test(a_truncated_error_keeps_its_context_and_its_root_cause),
	    cmocka_unit_test(a_truncated_error_cuts_whole_characters),
	    cmocka_unit_test(json_get_i64_leaves_absent_members_alone),
	    cmocka_unit_test(fnv1a_matches_the_reference_values),
	    cmocka_unit_test(names_follow_one_rule_each),
	    cmocka_unit_test(mountinfo_lines_are_split_and_unescaped),
	    cmocka_unit_test(mountinfo_options_are_filtered),
	    cmocka_unit_test(copies_share_one_ok_flag),
	    cmocka_unit_test(time_arguments_read_as_docker_logs_reads_them),
	    cmocka_unit_test_setup_teardown(open_in_root_keeps_absolute_symlinks_inside, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(open_in_root_keeps_dotdot_inside, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(open_parent_creates_directories_inside, make_root,
					    remove_root),
	};
	int failed = cmocka_run_group_tests_name("openat2", tests, NULL, NULL);
	/* The same cases again through the walk used on kernels without openat2. */
	fs_disable_openat2();
	const struct CMUnitTest walk_tests[] = {
	    cmocka_unit_test_setup_teardown(open_in_root_keeps_absolute_symlinks_inside, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(open_in_root_keeps_dotdot_inside, make_root,
					    remove_root),
	    cmocka_unit_test_setup_teardown(open_parent_creates_directories_inside, make_root,
					    remove_root),
	};
	return failed + cmocka_run_group_tests_name("walk", walk_tests, NULL, NULL);
}
