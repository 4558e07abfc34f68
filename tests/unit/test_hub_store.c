/* The store interface, on its in-memory implementation: appends complete
 * later (from store_dispatch), leases go best priority first then oldest,
 * acknowledged messages are gone, released ones come back, TTL and the
 * byte bound hold. */
#include "unit.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "hub/route.h"
#include "hub/store.h"

static struct store *open_store(size_t max)
{
	struct store_options o = {.max_bytes = max, .default_ttl_secs = 60};
	struct store *s;
	struct berr err;
	assert_int_equal(store_open(&o, &s, &err), 0);
	return s;
}

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
	append(s, "m1", "/modules/b/inputs/in1", 0, 0, 1000, &done);
	assert_int_equal(done, 0);
	struct pollfd p = {.fd = store_event_fd(s), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 1000), 1);
	store_dispatch(s);
	assert_int_equal(done, 1);
	store_close(s);
}

static void leases_go_by_priority_then_age(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "low-old", "/modules/b/inputs/in1", ROUTE_DEFAULT_PRIORITY, 0, 1000, &done);
	append(s, "p5", "/modules/b/inputs/in1", 5, 0, 1000, &done);
	append(s, "p0-a", "/modules/b/inputs/in2", 0, 0, 1000, &done);
	append(s, "p0-b", "/modules/b/inputs/in1", 0, 0, 1000, &done);
	store_dispatch(s);
	struct store_item it;
	assert_string_equal(lease_body(s, "/modules/b/inputs/", 1000, &it), "p0-a");
	assert_string_equal(it.endpoint, "/modules/b/inputs/in2");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", 1000, &it), "p0-b");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", 1000, &it), "p5");
	assert_string_equal(lease_body(s, "/modules/b/inputs/", 1000, &it), "low-old");
	assert_null(lease_body(s, "/modules/b/inputs/", 1000, &it));
	store_close(s);
}

static void prefix_selects_one_module(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "for-bb", "/modules/bb/inputs/in1", 0, 0, 1000, &done);
	append(s, "up", STORE_UPSTREAM, 0, 0, 1000, &done);
	store_dispatch(s);
	struct store_item it;
	assert_null(lease_body(s, "/modules/b/inputs/", 1000, &it));
	assert_string_equal(lease_body(s, STORE_UPSTREAM, 1000, &it), "up");
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
	append(s, "in1-first", "/modules/b/inputs/in1", 0, 0, 1000, &done);
	append(s, "in2-later", "/modules/b/inputs/in2", 5, 0, 1000, &done);
	store_dispatch(s);
	struct store_item it;
	assert_int_equal(store_lease(s, "/modules/b/inputs/", only_in2, NULL, 1000, &it), 0);
	assert_string_equal(it.endpoint, "/modules/b/inputs/in2");
	assert_int_equal(store_lease(s, "/modules/b/inputs/", only_in2, NULL, 1000, &it), 1);
	store_close(s);
}

static void acknowledged_is_gone_and_released_comes_back(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "one", "/modules/b/inputs/in1", 0, 0, 1000, &done);
	append(s, "two", "/modules/b/inputs/in1", 0, 0, 1000, &done);
	store_dispatch(s);
	struct store_item a, b;
	lease_body(s, "/modules/b/", 1000, &a);
	lease_body(s, "/modules/b/", 1000, &b);
	assert_false(a.redelivery);
	store_ack(s, a.endpoint, a.seq);
	store_release(s, b.endpoint, b.seq);
	struct store_item again;
	assert_string_equal(lease_body(s, "/modules/b/", 1000, &again), "two");
	assert_true(again.redelivery);
	assert_int_equal(again.seq, b.seq);
	store_ack(s, again.endpoint, again.seq);
	assert_int_equal(store_bytes(s), 0);
	store_close(s);
}

static void one_message_to_two_endpoints_is_held_once(void **state)
{
	struct store *s = open_store(1 << 20);
	struct hub_message m = {.body = (unsigned char *)"x", .body_len = 1, .enqueued_ms = 1};
	struct store_target t[2] = {{"/modules/a/inputs/i", 0, 0}, {STORE_UPSTREAM, 1, 0}};
	int done = 0;
	struct berr err;
	assert_int_equal(store_append(s, &m, t, 2, count_done, &done, &err), 0);
	store_dispatch(s);
	assert_int_equal(done, 1);
	size_t bytes = store_bytes(s);
	struct store_item it;
	lease_body(s, "/modules/a/", 1, &it);
	store_ack(s, it.endpoint, it.seq);
	assert_int_equal(store_bytes(s), bytes);
	lease_body(s, STORE_UPSTREAM, 1, &it);
	store_ack(s, it.endpoint, it.seq);
	assert_int_equal(store_bytes(s), 0);
	store_close(s);
}

static void expired_messages_are_never_leased(void **state)
{
	struct store *s = open_store(1 << 20);
	int done = 0;
	append(s, "short", STORE_UPSTREAM, 0, 10, 1000, &done);	 /* route TTL 10 s */
	append(s, "default", STORE_UPSTREAM, 0, 0, 1000, &done); /* store default 60 s */
	store_dispatch(s);
	struct store_item it;
	assert_string_equal(lease_body(s, STORE_UPSTREAM, 11000, &it), "default");
	store_release(s, it.endpoint, it.seq);
	assert_int_equal(store_expire(s, 61000), 1);
	assert_null(lease_body(s, STORE_UPSTREAM, 61000, &it));
	assert_int_equal(store_bytes(s), 0);
	store_close(s);
}

static void append_over_the_bound_is_refused_without_dropping_anything(void **state)
{
	struct store *s = open_store(800); /* two of these messages, not three */
	int done = 0;
	char body[200];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	append(s, body, STORE_UPSTREAM, 0, 0, 1, &done);
	append(s, body, STORE_UPSTREAM, 0, 0, 1, &done);
	struct hub_message m = {.body = (unsigned char *)body, .body_len = strlen(body)};
	struct store_target t = {STORE_UPSTREAM, 0, 0};
	struct berr err;
	int refused = 0;
	assert_int_equal(store_append(s, &m, &t, 1, count_done, &refused, &err), -1);
	assert_non_null(strstr(err.msg, "full"));
	store_dispatch(s);
	assert_int_equal(done, 2);
	assert_int_equal(refused, 0);
	struct store_item it;
	assert_non_null(lease_body(s, STORE_UPSTREAM, 1, &it));
	assert_non_null(lease_body(s, STORE_UPSTREAM, 1, &it));
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(append_completes_only_from_dispatch),
	    cmocka_unit_test(leases_go_by_priority_then_age),
	    cmocka_unit_test(prefix_selects_one_module),
	    cmocka_unit_test(consumer_leases_only_the_endpoints_it_accepts),
	    cmocka_unit_test(acknowledged_is_gone_and_released_comes_back),
	    cmocka_unit_test(one_message_to_two_endpoints_is_held_once),
	    cmocka_unit_test(expired_messages_are_never_leased),
	    cmocka_unit_test(append_over_the_bound_is_refused_without_dropping_anything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
