/* Route tables (one deployment's routes, one decision per sink) and the
 * message helpers they rely on. */
#include "route_test.h"

struct hits {
	size_t n;
	struct {
		char name[64];
		char sink[96];
		uint32_t priority, ttl;
	} h[8];
};

static void record(const struct route_hit *hit, void *arg)
{
	struct hits *hs = arg;
	assert_true(hs->n < ARRAY_SIZE(hs->h));
	snprintf(hs->h[hs->n].name, sizeof(hs->h[0].name), "%s", hit->route_name);
	if (hit->sink->kind == SINK_UPSTREAM)
		snprintf(hs->h[hs->n].sink, sizeof(hs->h[0].sink), "$upstream");
	else
		snprintf(hs->h[hs->n].sink, sizeof(hs->h[0].sink), "%s/%s", hit->sink->module,
			 hit->sink->input);
	hs->h[hs->n].priority = hit->priority;
	hs->h[hs->n].ttl = hit->ttl_secs;
	hs->n++;
}

static struct route_table *must_build(const struct route_def *defs, size_t n)
{
	struct route_table *t = NULL;
	struct berr err = {0};
	if (route_table_build(defs, n, &t, &err) < 0)
		fail_msg("table refused: %s", err.msg);
	return t;
}

#define TO_FILTER "BrokeredEndpoint(\"/modules/filter/inputs/in\")"
#define P	  ROUTE_DEFAULT_PRIORITY

static void build_error_names_the_route_and_position(void **state)
{
	const struct route_def defs[] = {
	    {"r1", "FROM /* INTO $upstream", P, 0},
	    {"r2", "FROM /* WHERE a = 'x' b INTO $upstream", P, 0},
	};
	struct route_table *t = NULL;
	struct berr err;
	assert_int_equal(route_table_build(defs, 2, &t, &err), -1);
	assert_null(t);
	assert_string_equal(err.msg, "route \"r2\": position 23: expected INTO, found 'b'");
}

static void build_refuses_a_priority_outside_0_to_9(void **state)
{
	const struct route_def defs[] = {{"r", "FROM /* INTO $upstream", 10, 0}};
	struct route_table *t = NULL;
	struct berr err;
	assert_int_equal(route_table_build(defs, 1, &t, &err), -1);
	assert_string_equal(err.msg, "route \"r\": priority 10 is not in 0-9");
}

static void build_refuses_more_routes_than_the_limit(void **state)
{
	struct route_def *defs = calloc(ROUTE_TABLE_MAX + 1, sizeof(*defs));
	for (size_t i = 0; i <= ROUTE_TABLE_MAX; i++)
		defs[i] = (struct route_def){"r", "FROM /* INTO $upstream", P, 0};
	struct route_table *t = NULL;
	struct berr err;
	assert_int_equal(route_table_build(defs, ROUTE_TABLE_MAX + 1, &t, &err), -1);
	assert_string_equal(err.msg, "257 routes is more than the limit of 256");
	struct route_table *ok = must_build(defs, ROUTE_TABLE_MAX);
	route_table_free(ok);
	free(defs);
}

static void an_empty_table_matches_nothing(void **state)
{
	struct route_table *t = must_build(NULL, 0);
	struct hub_message *m = msg_from("a", "b");
	struct hits hs = {0};
	assert_int_equal(route_table_match(t, m, record, &hs), 0);
	assert_int_equal(hs.n, 0);
	hub_message_free(m);
	route_table_free(t);
}

static void each_sink_is_called_once_in_table_order(void **state)
{
	const struct route_def defs[] = {
	    {"toFilter", "FROM /messages/* INTO " TO_FILTER, P, 0},
	    {"toCloud", "FROM /messages/modules/sensor/* INTO $upstream", P, 0},
	    {"toFilterAgain", "FROM /* WHERE $outputName = 'temp' INTO " TO_FILTER, P, 0},
	    {"otherModule", "FROM /messages/modules/other/* INTO $upstream", P, 0},
	    {"never", "FROM /* WHERE false INTO BrokeredEndpoint('/modules/x/inputs/y')", P, 0},
	};
	struct route_table *t = must_build(defs, ARRAY_SIZE(defs));
	struct hub_message *m = msg_from("sensor", "temp");
	struct hits hs = {0};
	assert_int_equal(route_table_match(t, m, record, &hs), 2);
	assert_int_equal(hs.n, 2);
	assert_string_equal(hs.h[0].sink, "filter/in");
	assert_string_equal(hs.h[0].name, "toFilter");
	assert_string_equal(hs.h[1].sink, "$upstream");
	assert_string_equal(hs.h[1].name, "toCloud");
	hub_message_free(m);
	route_table_free(t);
}

static void a_sink_reached_twice_takes_the_best_priority(void **state)
{
	const struct route_def defs[] = {
	    {"low", "FROM /* INTO " TO_FILTER, 5, 0},
	    {"default", "FROM /* INTO " TO_FILTER, P, 0},
	    {"high", "FROM /* INTO " TO_FILTER, 1, 0},
	    {"alsoHigh", "FROM /* INTO " TO_FILTER, 1, 0},
	};
	struct route_table *t = must_build(defs, ARRAY_SIZE(defs));
	struct hub_message *m = msg_from("sensor", "temp");
	struct hits hs = {0};
	assert_int_equal(route_table_match(t, m, record, &hs), 1);
	assert_int_equal(hs.h[0].priority, 1);
	assert_string_equal(hs.h[0].name, "high");
	hub_message_free(m);
	route_table_free(t);
}

static void a_sink_reached_twice_takes_the_longest_ttl(void **state)
{
	const struct route_def defs[] = {
	    {"short", "FROM /* INTO $upstream", 3, 60},
	    {"long", "FROM /* INTO $upstream", 4, 600},
	};
	struct route_table *t = must_build(defs, ARRAY_SIZE(defs));
	struct hub_message *m = msg_from("sensor", "temp");
	struct hits hs = {0};
	route_table_match(t, m, record, &hs);
	assert_int_equal(hs.h[0].ttl, 600);
	assert_int_equal(hs.h[0].priority, 3);
	hub_message_free(m);
	route_table_free(t);
}

static void the_default_ttl_is_weighed_once_the_table_knows_it(void **state)
{
	const struct route_def defs[] = {
	    {"default", "FROM /* INTO $upstream", P, 0},
	    {"minute", "FROM /* INTO $upstream", P, 60},
	};
	struct route_table *t = must_build(defs, ARRAY_SIZE(defs));
	struct hub_message *m = msg_from("sensor", "temp");
	struct hits hs = {0};
	route_table_match(t, m, record, &hs); /* unknown default: counts as longest */
	assert_int_equal(hs.h[0].ttl, 0);
	route_table_set_default_ttl(t, 30);
	hs.n = 0;
	route_table_match(t, m, record, &hs);
	assert_int_equal(hs.h[0].ttl, 60);
	route_table_set_default_ttl(t, 7200);
	hs.n = 0;
	route_table_match(t, m, record, &hs);
	assert_int_equal(hs.h[0].ttl, 0);
	hub_message_free(m);
	route_table_free(t);
}

static void body_routes_of_one_table_share_the_parsed_body(void **state)
{
	const struct route_def defs[] = {
	    {"hot", "FROM /* WHERE $body.t > 30 INTO " TO_FILTER, P, 0},
	    {"cold", "FROM /* WHERE $body.t < 10 INTO $upstream", P, 0},
	    {"known",
	     "FROM /* WHERE is_number($body.t) INTO BrokeredEndpoint('/modules/l/inputs/i')", P, 0},
	};
	struct route_table *t = must_build(defs, ARRAY_SIZE(defs));
	struct hub_message *m = msg_from("sensor", "temp");
	msg_set_json(m, "{\"t\": 35}");
	struct hits hs = {0};
	assert_int_equal(route_table_match(t, m, record, &hs), 2);
	assert_string_equal(hs.h[0].name, "hot");
	assert_string_equal(hs.h[1].name, "known");
	msg_set_json(m, "{\"t\": 5}");
	hs.n = 0;
	assert_int_equal(route_table_match(t, m, record, &hs), 2);
	assert_string_equal(hs.h[0].name, "cold");
	assert_string_equal(hs.h[1].name, "known");
	hub_message_free(m);
	route_table_free(t);
}

static void a_table_shares_body_queries_but_refuses_too_many(void **state)
{
	char *texts[2];
	for (int r = 0; r < 2; r++) {
		char *o = texts[r] = malloc(ROUTE_TEXT_MAX + 1);
		o = stpcpy(o, "FROM /* WHERE ");
		for (int i = 0; i < 70; i++)
			o += sprintf(o, "$body.k%d = 1 OR ", r * 70 + i);
		stpcpy(o, "false INTO $upstream");
	}
	const struct route_def same[] = {{"a", texts[0], P, 0}, {"b", texts[0], P, 0}};
	struct route_table *t = must_build(same, 2);
	route_table_free(t);
	const struct route_def different[] = {{"a", texts[0], P, 0}, {"b", texts[1], P, 0}};
	struct berr err;
	assert_int_equal(route_table_build(different, 2, &t, &err), -1);
	assert_string_equal(err.msg,
			    "route \"b\": the routes use more than 128 different $body queries");
	free(texts[0]);
	free(texts[1]);
}

/* ---- messages ---- */

static void system_property_names_follow_edgehub(void **state)
{
	assert_string_equal(msg_sys_bag_key(MSG_SYS_MESSAGE_ID), "$.mid");
	assert_string_equal(msg_sys_route_name(MSG_SYS_MESSAGE_ID), "$messageId");
	assert_string_equal(msg_sys_bag_key(MSG_SYS_CONNECTION_MODULE_ID), "$.cmid");
	assert_string_equal(msg_sys_route_name(MSG_SYS_CONNECTION_MODULE_ID),
			    "$connectionModuleId");
	assert_string_equal(msg_sys_bag_key(MSG_SYS_OUTPUT_NAME), "$.on");
	assert_string_equal(msg_sys_route_name(MSG_SYS_CREATION_TIME), "$creationTimeUtc");
	assert_null(msg_sys_bag_key(MSG_SYS_INPUT_NAME));
	for (int s = 0; s < MSG_SYS_COUNT; s++)
		assert_non_null(msg_sys_route_name((enum msg_sys)s));
	assert_null(msg_sys_route_name(MSG_SYS_COUNT));
}

static void msg_prop_get_matches_the_exact_key(void **state)
{
	struct hub_message *m = msg_new();
	msg_add_prop(m, "Key", "v");
	msg_add_prop(m, "empty", NULL);
	assert_string_equal(msg_prop_get(m, "Key"), "v");
	assert_null(msg_prop_get(m, "key"));
	assert_null(msg_prop_get(m, "empty"));
	hub_message_free(m);
}

static void hub_message_clear_leaves_an_empty_message(void **state)
{
	struct hub_message m = {0};
	msg_add_prop(&m, "a", "b");
	msg_set_sys(&m, MSG_SYS_TO, "x");
	msg_set_body(&m, "abc", 3);
	m.ttl_secs = 5;
	hub_message_clear(&m);
	assert_int_equal(m.n_props, 0);
	assert_null(m.props);
	assert_null(m.body);
	assert_null(m.sys[MSG_SYS_TO]);
	assert_int_equal(m.ttl_secs, 0);
	hub_message_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(build_error_names_the_route_and_position),
	    cmocka_unit_test(build_refuses_a_priority_outside_0_to_9),
	    cmocka_unit_test(build_refuses_more_routes_than_the_limit),
	    cmocka_unit_test(an_empty_table_matches_nothing),
	    cmocka_unit_test(each_sink_is_called_once_in_table_order),
	    cmocka_unit_test(a_sink_reached_twice_takes_the_best_priority),
	    cmocka_unit_test(a_sink_reached_twice_takes_the_longest_ttl),
	    cmocka_unit_test(the_default_ttl_is_weighed_once_the_table_knows_it),
	    cmocka_unit_test(body_routes_of_one_table_share_the_parsed_body),
	    cmocka_unit_test(a_table_shares_body_queries_but_refuses_too_many),
	    cmocka_unit_test(system_property_names_follow_edgehub),
	    cmocka_unit_test(msg_prop_get_matches_the_exact_key),
	    cmocka_unit_test(hub_message_clear_leaves_an_empty_message),
	};
	return cmocka_run_group_tests_name("route tables", tests, NULL, NULL);
}
