/* The store interface as the broker uses it, on the durable log in a real
 * directory with its writer thread: appends complete later (from
 * store_dispatch, when the event fd says so), leases go best priority
 * first then oldest, acknowledged messages are gone, released ones come
 * back, TTL holds. */
#include "unit.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fs.h"
#include "hub/route.h"
#include "hub/store.h"

static char dir[64];
static int64_t T0; /* times are wall-clock ms, as the hub gives them */
#define AT(ms) (T0 + (ms))

static int make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/berth-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	T0 = (int64_t)time(NULL) * 1000;
	return 0;
}

static int remove_dir(void **state)
{
	struct berr err;
	return fs_remove_tree(dir, &err);
}

static struct store *open_store(size_t max)
{
	struct store_options o = {.dir = dir, .max_bytes = max, .default_ttl_secs = 60};
	struct store *s;
	struct berr err;
	if (store_open(&o, &s, &err) < 0)
		fail_msg("%s", err.msg);
	return s;
}

/* Waits for the writer and runs completions until want appends are done. */
static void settle(struct store *s, int *done, int want)
{
	while (*done < want) {
		struct pollfd p = {.fd = store_event_fd(s), .events = POLLIN};
		assert_int_equal(poll(&p, 1, 5000), 1);
		store_dispatch(s);
	}
}

static size_t held(struct store *s);

static void count_done(void *arg, int status, const struct berr *err)
{
	assert_int_equal(status, 0);
	(*(int *)arg)++;
}

static void append(struct store *s, const char *body, const char *endpoint, uint32_t prio,
		   uint32_t ttl, int64_t now, int *done)
{
	struct hub_message m = {
	    .body = (unsigned char *)body, .body_len = strlen(body), .enqueued_ms = now};
	struct store_target t = {endpoint, prio, ttl};
	struct berr err;
	assert_int_equal(store_append(s, &m, &t, 1, count_done, done, &err), 0);
}

static const char *lease_body(struct store *s, const char *prefix, int64_t now,
			      struct store_item *it)
{
	if (store_lease(s, prefix, NULL, NULL, now, it) != 0)
		return NULL;
	static char buf[256];
	memcpy(buf, it->msg->body, it->msg->body_len);
	buf[it->msg->body_len] = '\0';
	return buf;
}

static void append_completes_only_from_dispatch(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "m1", "/modules/b/inputs/in1", 0, 0, AT(1000), &done);
	assert_int_equal(done, 0);
	settle(s, &done, 1);
	store_close(s);
}

static void leases_go_by_priority_then_age(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "low-old", "/modules/b/inputs/in1", ROUTE_DEFAULT_PRIORITY, 0, AT(1000), &done);
	append(s, "p5", "/modules/b/inputs/in1", 5, 0, AT(1000), &done);
	append(s, "p0-a", "/modules/b/inputs/in2", 0, 0, AT(1000), &done);
	append(s, "p0-b", "/modules/b/inputs/in1", 0, 0, AT(1000), &done);
	settle(s, &done, 4);
	struct store_item it;
	assert_string_equal(lease_body(s, "/modules/b/inputs/", AT(1000), &it), "p0-a");
	assert_string_equal(it.endpoint, "/modules/b/inputs/in2");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", AT(1000), &it), "p0-b");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", AT(1000), &it), "p5");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", AT(1000), &it), "low-old");
	assert_null(lease_body(s, "/modules/b/inputs/", AT(1000), &it));
	store_close(s);
}

static void prefix_selects_one_module(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "for-bb", "/modules/bb/inputs/in1", 0, 0, AT(1000), &done);
	append(s, "up", STORE_UPSTREAM, 0, 0, AT(1000), &done);
	settle(s, &done, 2);
	struct store_item it;
	assert_null(lease_body(s, "/modules/b/inputs/", AT(1000), &it));
	assert_string_equal(lease_body(s, STORE_UPSTREAM, AT(1000), &it), "up");
	store_close(s);
}

static bool only_in2(const char *endpoint, void *arg)
{
	return strstr(endpoint, "/in2") != NULL;
}

static void consumer_leases_only_the_endpoints_it_accepts(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "in1-first", "/modules/b/inputs/in1", 0, 0, AT(1000), &done);
	append(s, "in2-later", "/modules/b/inputs/in2", 5, 0, AT(1000), &done);
	settle(s, &done, 2);
	struct store_item it;
	assert_int_equal(store_lease(s, "/modules/b/inputs/", only_in2, NULL, AT(1000), &it), 0);
	assert_string_equal(it.endpoint, "/modules/b/inputs/in2");
	assert_int_equal(store_lease(s, "/modules/b/inputs/", only_in2, NULL, AT(1000), &it), 1);
	store_close(s);
}

static void acknowledged_is_gone_and_released_comes_back(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "one", "/modules/b/inputs/in1", 0, 0, AT(1000), &done);
	append(s, "two", "/modules/b/inputs/in1", 0, 0, AT(1000), &done);
	settle(s, &done, 2);
	struct store_item a, b;
	lease_body(s, "/modules/b/", AT(1000), &a);
	lease_body(s, "/modules/b/", AT(1000), &b);
	assert_false(a.redelivery);
	store_ack(s, a.endpoint, a.seq);
	store_release(s, b.endpoint, b.seq);
	struct store_item again;
	assert_string_equal(lease_body(s, "/modules/b/", AT(1000), &again), "two");
	assert_true(again.redelivery);
	assert_int_equal(again.seq, b.seq);
	store_ack(s, again.endpoint, again.seq);
	assert_int_equal(held(s), 0);
	store_close(s);
}

static void one_message_to_two_endpoints_is_held_once(void **state)
{
	struct store *s = open_store(1 << 20);
	struct hub_message m = {.body = (unsigned char *)"x", .body_len = 1, .enqueued_ms = AT(1)};
	struct store_target t[2] = {{"/modules/a/inputs/i", 0, 0}, {STORE_UPSTREAM, 1, 0}};
	int done = 0;
	struct berr err;
	assert_int_equal(store_append(s, &m, t, 2, count_done, &done, &err), 0);
	settle(s, &done, 1);
	assert_int_equal(held(s), 2);
	struct store_item it;
	lease_body(s, "/modules/a/", AT(1), &it);
	store_ack(s, it.endpoint, it.seq);
	assert_int_equal(held(s), 1);
	lease_body(s, STORE_UPSTREAM, AT(1), &it);
	store_ack(s, it.endpoint, it.seq);
	assert_int_equal(held(s), 0);
	store_close(s);
}

static void expired_messages_are_never_leased(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "short", STORE_UPSTREAM, 0, 10, AT(1000), &done);  /* route TTL 10 s */
	append(s, "default", STORE_UPSTREAM, 0, 0, AT(1000), &done); /* store default 60 s */
	settle(s, &done, 2);
	struct store_item it;
	assert_string_equal(lease_body(s, STORE_UPSTREAM, AT(11000), &it), "default");
	store_release(s, it.endpoint, it.seq);
	assert_int_equal(store_expire(s, AT(61000)), 1);
	assert_null(lease_body(s, STORE_UPSTREAM, AT(61000), &it));
	assert_int_equal(held(s), 0);
	store_close(s);
}

static void add_held(const struct store_stats *st, void *arg)
{
	*(size_t *)arg += st->messages;
}

static size_t held(struct store *s)
{
	size_t n = 0;
	store_foreach(s, add_held, &n);
	return n;
}

static void a_second_store_on_the_same_directory_is_refused(void **state)
{
	struct store *s = open_store(0);
	struct store_options o = {.dir = dir, .default_ttl_secs = 60};
	struct store *other;
	struct berr err;
	assert_int_equal(store_open(&o, &other, &err), -1);
	assert_non_null(strstr(err.msg, "in use by another hub"));
	store_close(s);
	assert_int_equal(store_open(&o, &other, &err), 0);
	store_close(other);
}

static void a_thousand_messages_survive_a_close(void **state)
{
	struct store *s = open_store(0);
	int done = 0;
	char body[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(body, sizeof(body), "m%04d", i);
		append(s, body, STORE_UPSTREAM, ROUTE_DEFAULT_PRIORITY, 0, AT(1000), &done);
		if (i % 100 == 99)
			settle(s, &done, i + 1);
	}
	settle(s, &done, 1000);
	store_close(s);
	s = open_store(0);
	struct store_item it;
	for (int i = 0; i < 1000; i++) {
		snprintf(body, sizeof(body), "m%04d", i);
		assert_string_equal(lease_body(s, STORE_UPSTREAM, AT(1000), &it), body);
		store_ack(s, it.endpoint, it.seq);
	}
	assert_null(lease_body(s, STORE_UPSTREAM, AT(1000), &it));
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(append_completes_only_from_dispatch, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(leases_go_by_priority_then_age, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(prefix_selects_one_module, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(consumer_leases_only_the_endpoints_it_accepts, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(acknowledged_is_gone_and_released_comes_back, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(one_message_to_two_endpoints_is_held_once, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(expired_messages_are_never_leased, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(a_second_store_on_the_same_directory_is_refused,
					    make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(a_thousand_messages_survive_a_close, make_dir,
					    remove_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
