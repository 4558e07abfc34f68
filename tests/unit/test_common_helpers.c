/* The shared helpers of common/ and agent/: flat JSON records from a table,
 * whole descriptors read to a bound, tables of names, bounded integers,
 * descriptors passed over unix sockets, environment vectors and the
 * daemon's state files. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/err.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/names.h"
#include "common/sock.h"
#include "common/strv.h"

/* json_get_fields() / json_gen_fields() */

struct rec {
	char name[8];
	char id[16];
	int64_t n;
	int64_t big;
};

static const struct json_field rec_table[] = {
    JSON_FIELD_STR(struct rec, "name", name),
    JSON_FIELD_STR(struct rec, "id", id),
    JSON_FIELD_I64(struct rec, "n", n),
    JSON_FIELD_I64(struct rec, "big", big),
};
#define REC_N (sizeof(rec_table) / sizeof(rec_table[0]))

/* Parses text and reads its members into *r; the result of json_get_fields(). */
static int get_rec(const char *text, bool required, struct rec *r, struct berr *err)
{
	yajl_val doc = NULL;
	assert_int_equal(json_parse(text, strlen(text), 4096, "test", &doc, err), 0);
	int rc = json_get_fields(doc, "rec", required, rec_table, REC_N, r, err);
	yajl_tree_free(doc);
	return rc;
}

static char *gen_rec(const struct rec *r)
{
	yajl_gen g = json_gen_new(false);
	assert_non_null(g);
	assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
	assert_int_equal(json_gen_fields(g, rec_table, REC_N, r), 0);
	assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
	char *text = json_gen_done(g, NULL);
	assert_non_null(text);
	return text;
}

static void json_fields_round_trip(void **state)
{
	/* name fills its field to the last byte before the NUL. */
	struct rec in = {.name = "abcdefg", .id = "", .n = -5, .big = INT64_MAX};
	char *text = gen_rec(&in);
	assert_string_equal(text, "{\"name\":\"abcdefg\",\"id\":\"\",\"n\":-5,"
				  "\"big\":9223372036854775807}");
	struct rec out;
	memset(&out, 'z', sizeof(out));
	struct berr err;
	assert_int_equal(get_rec(text, true, &out, &err), 0);
	assert_string_equal(out.name, in.name);
	assert_string_equal(out.id, "");
	assert_int_equal(out.n, -5);
	assert_true(out.big == INT64_MAX);
	free(text);

	/* INT64_MIN itself is written, but yajl reads it as out of range. */
	in.big = INT64_MIN + 1;
	snprintf(in.id, sizeof(in.id), "%s", "quoted \"\\\n");
	text = gen_rec(&in);
	assert_int_equal(get_rec(text, true, &out, &err), 0);
	assert_string_equal(out.id, in.id);
	assert_true(out.big == INT64_MIN + 1);
	free(text);
}

static void json_fields_missing_required_member_is_named(void **state)
{
	const char *no_id = "{\"name\":\"a\",\"n\":1,\"big\":2}";
	struct rec r = {.id = "keep"};
	struct berr err;
	assert_int_equal(get_rec(no_id, true, &r, &err), -1);
	assert_string_equal(err.msg, "rec.id: required but missing");

	/* Not required: the absent member leaves its field alone. */
	r = (struct rec){.id = "keep", .big = 7};
	assert_int_equal(get_rec("{\"name\":\"a\",\"n\":1}", false, &r, &err), 0);
	assert_string_equal(r.name, "a");
	assert_string_equal(r.id, "keep");
	assert_int_equal(r.n, 1);
	assert_int_equal(r.big, 7);

	/* An absent integer is named as well. */
	assert_int_equal(get_rec("{\"name\":\"a\",\"id\":\"b\",\"n\":1}", true, &r, &err), -1);
	assert_string_equal(err.msg, "rec.big: required but missing");
}

static void json_fields_member_of_the_wrong_type_is_named(void **state)
{
	struct rec r;
	struct berr err;
	assert_int_equal(get_rec("{\"name\":\"a\",\"id\":\"b\",\"n\":1,\"big\":2}", true, &r, &err),
			 0);
	assert_int_equal(get_rec("{\"name\":5,\"id\":\"b\",\"n\":1,\"big\":2}", true, &r, &err),
			 -1);
	assert_string_equal(err.msg, "rec.name: expected a string");
	assert_int_equal(get_rec("{\"name\":\"a\",\"id\":null,\"n\":1,\"big\":2}", true, &r, &err),
			 -1);
	assert_string_equal(err.msg, "rec.id: expected a string");
	assert_int_equal(
	    get_rec("{\"name\":\"a\",\"id\":\"b\",\"n\":\"1\",\"big\":2}", true, &r, &err), -1);
	assert_string_equal(err.msg, "rec.n: expected an integer");
	assert_int_equal(
	    get_rec("{\"name\":\"a\",\"id\":\"b\",\"n\":1,\"big\":1.5}", true, &r, &err), -1);
	assert_string_equal(err.msg, "rec.big: expected an integer");
	/* One past INT64_MAX is no integer of the record's. */
	assert_int_equal(get_rec("{\"name\":\"a\",\"id\":\"b\",\"n\":1,"
				 "\"big\":9223372036854775808}",
				 true, &r, &err),
			 -1);
	assert_string_equal(err.msg, "rec.big: expected an integer");
	/* Not required does not let a wrong type through. */
	assert_int_equal(get_rec("{\"n\":[]}", false, &r, &err), -1);
	assert_string_equal(err.msg, "rec.n: expected an integer");
}

static void json_fields_over_long_string_is_named(void **state)
{
	struct rec r;
	struct berr err;
	/* name: 7 bytes fit in char[8], 8 do not. */
	assert_int_equal(
	    get_rec("{\"name\":\"1234567\",\"id\":\"\",\"n\":0,\"big\":0}", true, &r, &err), 0);
	assert_string_equal(r.name, "1234567");
	assert_int_equal(
	    get_rec("{\"name\":\"12345678\",\"id\":\"\",\"n\":0,\"big\":0}", true, &r, &err), -1);
	assert_string_equal(err.msg, "rec.name: longer than 7 bytes");
	assert_int_equal(get_rec("{\"name\":\"\",\"id\":\"0123456789abcdef\",\"n\":0,\"big\":0}",
				 true, &r, &err),
			 -1);
	assert_string_equal(err.msg, "rec.id: longer than 15 bytes");
}

static void json_fields_unknown_members_are_ignored(void **state)
{
	struct rec r;
	memset(&r, 0, sizeof(r));
	struct berr err;
	assert_int_equal(get_rec("{\"future\":{\"x\":[1,2]},\"name\":\"a\",\"id\":\"b\","
				 "\"n\":3,\"big\":4,\"Name\":5}",
				 true, &r, &err),
			 0);
	assert_string_equal(r.name, "a");
	assert_string_equal(r.id, "b");
	assert_int_equal(r.n, 3);
	assert_int_equal(r.big, 4);
	/* They are not written back. */
	char *text = gen_rec(&r);
	assert_null(strstr(text, "future"));
	assert_null(strstr(text, "Name"));
	free(text);
}

/* fs_read_fd() */

/* A pipe holding len bytes of c, its write end closed. */
static int pipe_of(size_t len, char c)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	char *buf = malloc(len + 1);
	assert_non_null(buf);
	memset(buf, c, len);
	assert_int_equal(fs_write_all(p[1], buf, len, -1), 0);
	free(buf);
	close(p[1]);
	return p[0];
}

static void fs_read_fd_reads_a_whole_pipe(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "hello", 5), 5);
	close(p[1]);
	char *out = NULL;
	size_t len = 99;
	struct berr err;
	assert_int_equal(fs_read_fd(p[0], "pipe", 100, &out, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(out, "hello");
	free(out);
	close(p[0]);

	/* More than the first buffer's 4096 bytes. */
	int fd = pipe_of(10000, 'a');
	assert_int_equal(fs_read_fd(fd, "pipe", 10000, &out, &len, &err), 0);
	assert_int_equal(len, 10000);
	assert_int_equal(strlen(out), 10000);
	assert_int_equal(out[9999], 'a');
	free(out);
	close(fd);
}

static void fs_read_fd_reads_the_rest_of_a_file(void **state)
{
	char path[] = "/tmp/berth-unit-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fs_write_all(fd, "0123456789", 10, -1), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	char *out = NULL;
	size_t len = 0;
	struct berr err;
	assert_int_equal(fs_read_fd(fd, "file", 10, &out, &len, &err), 0);
	assert_int_equal(len, 10);
	assert_string_equal(out, "0123456789");
	free(out);
	/* From where the descriptor stands. */
	assert_int_equal(lseek(fd, 4, SEEK_SET), 4);
	assert_int_equal(fs_read_fd(fd, "file", 6, &out, &len, &err), 0);
	assert_string_equal(out, "456789");
	free(out);
	/* The whole file, one byte over. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(fs_read_fd(fd, "file", 9, &out, &len, &err), -1);
	assert_null(out);
	assert_string_equal(err.msg, "file: over the limit of 9 bytes");
	close(fd);
}

static void fs_read_fd_refuses_one_byte_over_the_limit(void **state)
{
	const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t max = sizes[i];
		char *out = NULL;
		size_t len = 0;
		struct berr err;
		int fd = pipe_of(max, 'b');
		assert_int_equal(fs_read_fd(fd, "input", max, &out, &len, &err), 0);
		assert_int_equal(len, max);
		free(out);
		close(fd);

		fd = pipe_of(max + 1, 'b');
		out = (char *)"untouched";
		assert_int_equal(fs_read_fd(fd, "input", max, &out, &len, &err), -1);
		assert_null(out);
		char want[64];
		snprintf(want, sizeof(want), "input: over the limit of %zu bytes", max);
		assert_string_equal(err.msg, want);
		assert_int_equal(err.code, 0);
		close(fd);
	}
}

static void fs_read_fd_of_empty_input(void **state)
{
	char *out = NULL;
	size_t len = 99;
	struct berr err;
	int fd = pipe_of(0, 0);
	assert_int_equal(fs_read_fd(fd, "empty", 0, &out, &len, &err), 0);
	assert_non_null(out);
	assert_string_equal(out, "");
	assert_int_equal(len, 0);
	free(out);
	close(fd);
	/* A limit of 0 refuses a single byte. */
	fd = pipe_of(1, 'c');
	assert_int_equal(fs_read_fd(fd, "empty", 0, &out, &len, &err), -1);
	assert_string_equal(err.msg, "empty: over the limit of 0 bytes");
	close(fd);
	/* len may be NULL. */
	fd = pipe_of(3, 'c');
	assert_int_equal(fs_read_fd(fd, "empty", 3, &out, NULL, &err), 0);
	assert_string_equal(out, "ccc");
	free(out);
	close(fd);
}

static void fs_read_fd_names_a_read_error(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	char *out = NULL;
	struct berr err;
	/* The write end cannot be read. */
	assert_int_equal(fs_read_fd(p[1], "the pipe", 10, &out, NULL, &err), -1);
	assert_null(out);
	assert_int_equal(err.code, EBADF);
	assert_non_null(strstr(err.msg, "read the pipe"));
	close(p[1]);
	assert_int_equal(fs_read_fd(p[0], "the pipe", 10, &out, NULL, &err), 0);
	assert_string_equal(out, "");
	free(out);
	close(p[0]);
}

/* name_value_find() */

static const struct name_value colours[] = {
    {"red", 1},
    {"green", 2},
    {"blue", 3},
};

static void name_value_find_finds_a_name(void **state)
{
	const struct name_value *e = name_value_find(colours, 3, "green");
	assert_ptr_equal(e, &colours[1]);
	assert_int_equal(e->value, 2);
	assert_ptr_equal(name_value_find(colours, 3, "red"), &colours[0]);
	assert_ptr_equal(name_value_find(colours, 3, "blue"), &colours[2]);
}

static void name_value_find_does_not_find_other_names(void **state)
{
	assert_non_null(name_value_find(colours, 3, "red"));
	assert_null(name_value_find(colours, 3, "yellow"));
	assert_null(name_value_find(colours, 3, ""));
	assert_null(name_value_find(colours, 3, "re"));
	assert_null(name_value_find(colours, 3, "redd"));
	assert_null(name_value_find(colours, 3, "RED"));
}

static void name_value_find_stops_at_the_tables_end(void **state)
{
	assert_ptr_equal(name_value_find(colours, 3, "blue"), &colours[2]);
	assert_null(name_value_find(colours, 2, "blue"));
	assert_ptr_equal(name_value_find(colours, 1, "red"), &colours[0]);
	assert_null(name_value_find(colours, 1, "green"));
	assert_null(name_value_find(colours, 0, "red"));
}

/* parse_int() */

static void parse_int_reads_whole_numbers(void **state)
{
	int64_t v = 0;
	assert_int_equal(parse_int("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(parse_int("-7", -10, 10, &v), 0);
	assert_int_equal(v, -7);
	assert_int_equal(parse_int("0", 0, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_int("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
}

static void parse_int_bounds_are_inclusive(void **state)
{
	int64_t v = 0;
	assert_int_equal(parse_int("1", 1, 65535, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_int("65535", 1, 65535, &v), 0);
	assert_int_equal(v, 65535);
	v = 123;
	assert_int_equal(parse_int("0", 1, 65535, &v), -1);
	assert_int_equal(parse_int("65536", 1, 65535, &v), -1);
	assert_int_equal(parse_int("-1", 0, 10, &v), -1);
	assert_int_equal(v, 123);
	assert_int_equal(parse_int("-10", -10, -5, &v), 0);
	assert_int_equal(v, -10);
	assert_int_equal(parse_int("-11", -10, -5, &v), -1);
	assert_int_equal(parse_int("-4", -10, -5, &v), -1);
}

static void parse_int_refuses_empty_and_other_characters(void **state)
{
	int64_t v = 0;
	assert_int_equal(parse_int("12", 0, 100, &v), 0);
	assert_int_equal(parse_int("", 0, 100, &v), -1);
	assert_int_equal(parse_int("12x", 0, 100, &v), -1);
	assert_int_equal(parse_int("x12", 0, 100, &v), -1);
	assert_int_equal(parse_int("12 ", 0, 100, &v), -1);
	assert_int_equal(parse_int(" 12", 0, 100, &v), -1);
	assert_int_equal(parse_int("\t12", 0, 100, &v), -1);
	assert_int_equal(parse_int("\n12", 0, 100, &v), -1);
	assert_int_equal(parse_int("1.5", 0, 100, &v), -1);
	assert_int_equal(parse_int("0x10", 0, 100, &v), -1);
	assert_int_equal(parse_int("-", -100, 100, &v), -1);
	assert_int_equal(parse_int("- 1", -100, 100, &v), -1);
	assert_int_equal(v, 12);
}

static void parse_int_refuses_overflow(void **state)
{
	int64_t v = 0;
	assert_int_equal(parse_int("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
	assert_int_equal(parse_int("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
	assert_int_equal(parse_int("99999999999999999999999", INT64_MIN, INT64_MAX, &v), -1);
	assert_true(v == INT64_MIN);
}

/* sock_send_with_fd() / sock_recv_with_fd() */

/* Entries of a directory, . and .. aside. */
static int dir_entries(const char *path)
{
	DIR *dir = opendir(path);
	assert_non_null(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

static int open_fds(void)
{
	return dir_entries("/proc/self/fd");
}

static void sock_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void a_passed_descriptor_arrives_and_works(void **state)
{
	int sv[2], p[2];
	sock_pair(sv);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(sock_send_with_fd(sv[0], "fd", 2, p[1], 0), 2);
	char buf[16] = {0};
	int fd = -1;
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, 0), 2);
	assert_memory_equal(buf, "fd", 2);
	assert_true(fd >= 0);
	assert_int_not_equal(fd, p[1]);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* The received descriptor is the pipe's write end. */
	close(p[1]);
	assert_int_equal(write(fd, "xyz", 3), 3);
	close(fd);
	char got[4] = {0};
	assert_int_equal(read(p[0], got, sizeof(got)), 3);
	assert_string_equal(got, "xyz");
	assert_int_equal(read(p[0], got, sizeof(got)), 0);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

static void a_message_without_a_descriptor_gives_minus_one(void **state)
{
	int sv[2];
	sock_pair(sv);
	char buf[16];
	int fd = 12345;
	assert_int_equal(sock_send_with_fd(sv[0], "plain", 5, -1, 0), 5);
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, 0), 5);
	assert_memory_equal(buf, "plain", 5);
	assert_int_equal(fd, -1);
	/* Control: the same exchange with a descriptor gives one. */
	assert_int_equal(sock_send_with_fd(sv[0], "with", 4, STDIN_FILENO, 0), 4);
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, 0), 4);
	assert_true(fd >= 0);
	close(fd);
	/* Nothing to read: recvmsg()'s -1, and no descriptor. */
	fd = 12345;
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fd, -1);
	/* The peer gone: 0, and no descriptor. */
	close(sv[0]);
	fd = 12345;
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, 0), 0);
	assert_int_equal(fd, -1);
	close(sv[1]);
}

static void an_unasked_for_descriptor_is_closed(void **state)
{
	int sv[2];
	sock_pair(sv);
	char buf[16];
	int before = open_fds();
	/* Control: asked for, the descriptor is one more open. */
	int fd = -1;
	assert_int_equal(sock_send_with_fd(sv[0], "a", 1, STDIN_FILENO, 0), 1);
	assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), &fd, 0), 1);
	assert_true(fd >= 0);
	assert_int_equal(open_fds(), before + 1);
	close(fd);
	assert_int_equal(open_fds(), before);
	/* Not asked for: closed on arrival, whatever it is. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sock_send_with_fd(sv[0], "b", 1, sv[0], 0), 1);
		assert_int_equal(sock_recv_with_fd(sv[1], buf, sizeof(buf), NULL, 0), 1);
		assert_int_equal(buf[0], 'b');
	}
	assert_int_equal(open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

/* strv_env_set_kv() */

static void strv_env_set_kv_sets_a_new_variable(void **state)
{
	char **env = NULL;
	assert_int_equal(strv_env_set_kv(&env, "PATH", "/bin"), 0);
	assert_int_equal(strv_len(env), 1);
	assert_string_equal(env[0], "PATH=/bin");
	assert_int_equal(strv_env_set_kv(&env, "PATHS", ""), 0);
	assert_int_equal(strv_len(env), 2);
	assert_string_equal(strv_env_get(env, "PATH"), "/bin");
	assert_string_equal(strv_env_get(env, "PATHS"), "");
	assert_null(strv_env_get(env, "PAT"));
	/* A value may hold '='. */
	assert_int_equal(strv_env_set_kv(&env, "Q", "a=b"), 0);
	assert_string_equal(strv_env_get(env, "Q"), "a=b");
	assert_int_equal(strv_len(env), 3);
	strv_free(env);
}

static void strv_env_set_kv_replaces_an_existing_variable(void **state)
{
	char **env = NULL;
	assert_int_equal(strv_env_set_kv(&env, "A", "1"), 0);
	assert_int_equal(strv_env_set_kv(&env, "AB", "2"), 0);
	assert_int_equal(strv_env_set_kv(&env, "B", "3"), 0);
	assert_int_equal(strv_env_set_kv(&env, "A", "one"), 0);
	assert_int_equal(strv_len(env), 3);
	assert_string_equal(env[0], "A=one");
	assert_string_equal(env[1], "AB=2");
	assert_string_equal(env[2], "B=3");
	assert_int_equal(strv_env_set_kv(&env, "AB", "two=2"), 0);
	assert_int_equal(strv_len(env), 3);
	assert_string_equal(strv_env_get(env, "AB"), "two=2");
	assert_string_equal(strv_env_get(env, "A"), "one");
	/* An existing variable set as "KEY=value" is replaced as well. */
	assert_int_equal(strv_env_set(&env, "B=three"), 0);
	assert_int_equal(strv_env_set_kv(&env, "B", "3"), 0);
	assert_int_equal(strv_len(env), 3);
	assert_string_equal(env[2], "B=3");
	strv_free(env);
}

static void strv_env_set_kv_keeps_long_values_whole(void **state)
{
	const size_t sizes[] = {8191, 8192, 8193, 70000};
	char **env = NULL;
	assert_int_equal(strv_env_set_kv(&env, "FIRST", "x"), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *value = malloc(sizes[i] + 1);
		assert_non_null(value);
		for (size_t j = 0; j < sizes[i]; j++)
			value[j] = (char)('a' + j % 26);
		value[sizes[i]] = '\0';
		assert_int_equal(strv_env_set_kv(&env, "LONG", value), 0);
		const char *got = strv_env_get(env, "LONG");
		assert_non_null(got);
		assert_int_equal(strlen(got), sizes[i]);
		assert_string_equal(got, value);
		free(value);
	}
	assert_int_equal(strv_len(env), 2);
	assert_string_equal(strv_env_get(env, "FIRST"), "x");
	strv_free(env);
}

/* daemon_state_save() / daemon_state_load(): only the daemon's root is
 * used, so a temporary root stands in for /var/lib/berth. */

static char state_root[64];

static int make_state_root(void **state)
{
	strcpy(state_root, "/tmp/berth-unit-XXXXXX");
	assert_non_null(mkdtemp(state_root));
	char p[128];
	snprintf(p, sizeof(p), "%s/agent", state_root);
	assert_int_equal(mkdir(p, 0700), 0);
	struct daemon *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	snprintf(d->root, sizeof(d->root), "%s", state_root);
	*state = d;
	return 0;
}

static int remove_state_root(void **state)
{
	free(*state);
	struct berr err;
	return fs_remove_tree(state_root, &err);
}

static yajl_gen doc_gen(const char *key, const char *value)
{
	yajl_gen g = json_gen_new(false);
	assert_non_null(g);
	assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
	assert_int_equal(json_gen_key_str(g, key, value), 0);
	assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
	return g;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, text, strlen(text), -1), 0);
	close(fd);
}

static void daemon_state_save_replaces_the_file_whole_mode_0600(void **state)
{
	struct daemon *d = *state;
	char path[256], agent[256];
	snprintf(agent, sizeof(agent), "%s/agent", state_root);
	snprintf(path, sizeof(path), "%s/agent/s.json", state_root);
	const char *old = "{\"old\":\"a much longer document than the new one\"}";
	write_text(path, old, 0644);
	struct stat st_old;
	assert_int_equal(stat(path, &st_old), 0);
	int reader = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(reader >= 0);

	struct berr err;
	assert_int_equal(daemon_state_save(d, "agent/s.json", doc_gen("k", "v"), "state s", &err),
			 0);
	char *text = NULL;
	assert_int_equal(fs_read_file(path, 4096, &text, NULL, &err), 0);
	assert_string_equal(text, "{\"k\":\"v\"}");
	free(text);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* A new file renamed over the old one: a reader of the old one still
	 * reads it whole, and no temporary file is left behind. */
	assert_true(st.st_ino != st_old.st_ino);
	assert_int_equal(fs_read_fd(reader, "old", 4096, &text, NULL, &err), 0);
	assert_string_equal(text, old);
	free(text);
	close(reader);
	assert_int_equal(dir_entries(agent), 1);

	yajl_val doc = NULL;
	assert_int_equal(daemon_state_load(d, "agent/s.json", 4096, &doc, &err), 0);
	assert_non_null(doc);
	assert_string_equal(json_str(json_get(doc, "k")), "v");
	yajl_tree_free(doc);
}

static void daemon_state_save_names_what_failed(void **state)
{
	struct daemon *d = *state;
	struct berr err;
	assert_int_equal(daemon_state_save(d, "agent/ok.json", doc_gen("k", "v"), "ok", &err), 0);
	/* A directory that is not there. */
	assert_int_equal(daemon_state_save(d, "none/s.json", doc_gen("k", "v"), "state s", &err),
			 -1);
	assert_int_equal(err.code, ENOENT);
	assert_true(strncmp(err.msg, "state s: ", 9) == 0);
	char agent[256];
	snprintf(agent, sizeof(agent), "%s/agent", state_root);
	assert_int_equal(dir_entries(agent), 1);
	assert_int_equal(dir_entries(state_root), 1);
	/* A path too long for the daemon's buffer. */
	char name[4300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(daemon_state_save(d, name, doc_gen("k", "v"), "state long", &err), -1);
	assert_int_equal(err.code, ENAMETOOLONG);
	assert_true(strncmp(err.msg, "state long", 10) == 0);
}

static void daemon_state_load_of_a_missing_file_is_none(void **state)
{
	struct daemon *d = *state;
	struct berr err;
	yajl_val doc = (yajl_val)&err;
	assert_int_equal(daemon_state_load(d, "agent/missing.json", 4096, &doc, &err), 0);
	assert_null(doc);
	assert_int_equal(daemon_state_load(d, "nodir/missing.json", 4096, &doc, &err), 0);
	assert_null(doc);
	/* Control: once written, it is there. */
	assert_int_equal(
	    daemon_state_save(d, "agent/missing.json", doc_gen("k", "here"), "state", &err), 0);
	assert_int_equal(daemon_state_load(d, "agent/missing.json", 4096, &doc, &err), 0);
	assert_non_null(doc);
	assert_string_equal(json_str(json_get(doc, "k")), "here");
	yajl_tree_free(doc);
}

static void daemon_state_load_refuses_one_byte_over_its_limit(void **state)
{
	struct daemon *d = *state;
	struct berr err;
	char path[256];
	snprintf(path, sizeof(path), "%s/agent/big.json", state_root);
	write_text(path, "{\"k\":\"0123456789\"}", 0600); /* 18 bytes */
	yajl_val doc = NULL;
	assert_int_equal(daemon_state_load(d, "agent/big.json", 18, &doc, &err), 0);
	assert_non_null(doc);
	assert_string_equal(json_str(json_get(doc, "k")), "0123456789");
	yajl_tree_free(doc);
	doc = NULL;
	assert_int_equal(daemon_state_load(d, "agent/big.json", 17, &doc, &err), -1);
	assert_null(doc);
	char want[512];
	snprintf(want, sizeof(want), "%s: 18 bytes is over the limit of 17", path);
	assert_string_equal(err.msg, want);
	/* A file that is no JSON is an error, not none. */
	write_text(path, "{\"k\":", 0600);
	assert_int_equal(daemon_state_load(d, "agent/big.json", 18, &doc, &err), -1);
	assert_null(doc);
	assert_non_null(strstr(err.msg, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_fields_round_trip),
	    cmocka_unit_test(json_fields_missing_required_member_is_named),
	    cmocka_unit_test(json_fields_member_of_the_wrong_type_is_named),
	    cmocka_unit_test(json_fields_over_long_string_is_named),
	    cmocka_unit_test(json_fields_unknown_members_are_ignored),
	    cmocka_unit_test(fs_read_fd_reads_a_whole_pipe),
	    cmocka_unit_test(fs_read_fd_reads_the_rest_of_a_file),
	    cmocka_unit_test(fs_read_fd_refuses_one_byte_over_the_limit),
	    cmocka_unit_test(fs_read_fd_of_empty_input),
	    cmocka_unit_test(fs_read_fd_names_a_read_error),
	    cmocka_unit_test(name_value_find_finds_a_name),
	    cmocka_unit_test(name_value_find_does_not_find_other_names),
	    cmocka_unit_test(name_value_find_stops_at_the_tables_end),
	    cmocka_unit_test(parse_int_reads_whole_numbers),
	    cmocka_unit_test(parse_int_bounds_are_inclusive),
	    cmocka_unit_test(parse_int_refuses_empty_and_other_characters),
	    cmocka_unit_test(parse_int_refuses_overflow),
	    cmocka_unit_test(a_passed_descriptor_arrives_and_works),
	    cmocka_unit_test(a_message_without_a_descriptor_gives_minus_one),
	    cmocka_unit_test(an_unasked_for_descriptor_is_closed),
	    cmocka_unit_test(strv_env_set_kv_sets_a_new_variable),
	    cmocka_unit_test(strv_env_set_kv_replaces_an_existing_variable),
	    cmocka_unit_test(strv_env_set_kv_keeps_long_values_whole),
	    cmocka_unit_test_setup_teardown(daemon_state_save_replaces_the_file_whole_mode_0600,
					    make_state_root, remove_state_root),
	    cmocka_unit_test_setup_teardown(daemon_state_save_names_what_failed, make_state_root,
					    remove_state_root),
	    cmocka_unit_test_setup_teardown(daemon_state_load_of_a_missing_file_is_none,
					    make_state_root, remove_state_root),
	    cmocka_unit_test_setup_teardown(daemon_state_load_refuses_one_byte_over_its_limit,
					    make_state_root, remove_state_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
