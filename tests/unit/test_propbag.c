/* Property bags as IoT Hub and edgeHub write them on topics: system and
 * application properties, percent-encoding both ways, and the bounds. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/propbag.h"

static int parse(const char *bag, struct hub_message *m)
{
	struct berr err;
	memset(m, 0, sizeof(*m));
	return propbag_parse(bag, strlen(bag), m, &err);
}

static void system_properties_land_in_their_fields(void **state)
{
	static const char bag[] =
	    "$.on=out1&$.mid=42&$.cid=c7&$.ct=application%2Fjson&$.ce=utf-8&$.uid=u"
	    "&$.to=%2Fdevices%2Fd&$.exp=2030&$.ctime=2026-01-01T00%3A00%3A00Z&$.schema=s1";
	struct hub_message m;
	assert_int_equal(parse(bag, &m), 0);
	assert_string_equal(m.sys[MSG_SYS_OUTPUT_NAME], "out1");
	assert_string_equal(m.sys[MSG_SYS_MESSAGE_ID], "42");
	assert_string_equal(m.sys[MSG_SYS_CORRELATION_ID], "c7");
	assert_string_equal(m.sys[MSG_SYS_CONTENT_TYPE], "application/json");
	assert_string_equal(m.sys[MSG_SYS_CONTENT_ENCODING], "utf-8");
	assert_string_equal(m.sys[MSG_SYS_USER_ID], "u");
	assert_string_equal(m.sys[MSG_SYS_TO], "/devices/d");
	assert_string_equal(m.sys[MSG_SYS_EXPIRY], "2030");
	assert_string_equal(m.sys[MSG_SYS_CREATION_TIME], "2026-01-01T00:00:00Z");
	assert_string_equal(m.sys[MSG_SYS_SCHEMA], "s1");
	assert_int_equal(m.n_props, 0);
	hub_message_clear(&m);
}

static void encoded_system_keys_are_recognised(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("%24.on=out2&%24.ct=text%2Fplain", &m), 0);
	assert_string_equal(m.sys[MSG_SYS_OUTPUT_NAME], "out2");
	assert_string_equal(m.sys[MSG_SYS_CONTENT_TYPE], "text/plain");
	hub_message_clear(&m);
}

static void application_properties_keep_their_order_and_decode(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("temp=21.5&site=Hannover%20Nord&a%26b=c%3Dd&%C3%A9t%C3%A9=oui", &m),
			 0);
	assert_int_equal(m.n_props, 4);
	assert_string_equal(m.props[0].key, "temp");
	assert_string_equal(m.props[0].value, "21.5");
	assert_string_equal(m.props[1].value, "Hannover Nord");
	assert_string_equal(m.props[2].key, "a&b");
	assert_string_equal(m.props[2].value, "c=d");
	assert_string_equal(m.props[3].key, "\xc3\xa9t\xc3\xa9");
	hub_message_clear(&m);
}

static void plus_stays_a_plus(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("k=a+b", &m), 0);
	assert_string_equal(m.props[0].value, "a+b");
	hub_message_clear(&m);
}

static void key_without_value_has_an_empty_value(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("flag&k=", &m), 0);
	assert_int_equal(m.n_props, 2);
	assert_string_equal(m.props[0].key, "flag");
	assert_string_equal(m.props[0].value, "");
	assert_string_equal(m.props[1].value, "");
	hub_message_clear(&m);
}

static void repeated_key_keeps_the_last_value(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("k=1&j=2&k=3&$.mid=a&$.mid=b", &m), 0);
	assert_int_equal(m.n_props, 2);
	assert_string_equal(m.props[0].value, "3");
	assert_string_equal(m.sys[MSG_SYS_MESSAGE_ID], "b");
	hub_message_clear(&m);
}

static void empty_bag_and_empty_pairs_are_fine(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("", &m), 0);
	assert_int_equal(m.n_props, 0);
	assert_int_equal(parse("&&k=v&", &m), 0);
	assert_int_equal(m.n_props, 1);
	hub_message_clear(&m);
}

static void bag_ends_at_a_slash(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("k=v/ignored=1", &m), 0);
	assert_int_equal(m.n_props, 1);
	assert_string_equal(m.props[0].value, "v");
	hub_message_clear(&m);
}

static void sender_identity_cannot_be_set_by_the_sender(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("$.cdid=other&%24.cmid=spoofed&k=v", &m), 0);
	assert_null(m.sys[MSG_SYS_CONNECTION_DEVICE_ID]);
	assert_null(m.sys[MSG_SYS_CONNECTION_MODULE_ID]);
	assert_int_equal(m.n_props, 1);
	hub_message_clear(&m);
}

static void malformed_bags_are_refused(void **state)
{
	static const char *bad[] = {
	    "=v",      /* empty key */
	    "k=a=b",   /* '=' inside a value */
	    "k=%zz",   /* bad escape */
	    "k=%4",    /* truncated escape */
	    "k=a%00b", /* encoded NUL */
	    "%00=v",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hub_message m;
		if (parse(bad[i], &m) != -1)
			fail_msg("bag \"%s\" was accepted", bad[i]);
		hub_message_clear(&m);
	}
}

static void too_many_properties_are_refused(void **state)
{
	char bag[MSG_MAX_PROPS * 16];
	size_t off = 0;
	for (int i = 0; i <= MSG_MAX_PROPS; i++)
		off += (size_t)snprintf(bag + off, sizeof(bag) - off, "%sk%d=v", i ? "&" : "", i);
	struct hub_message m;
	struct berr err;
	memset(&m, 0, sizeof(m));
	assert_int_equal(propbag_parse(bag, off, &m, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	hub_message_clear(&m);
	/* Exactly the limit is fine. */
	char *last = strrchr(bag, '&');
	assert_int_equal(propbag_parse(bag, (size_t)(last - bag), &m, &err), 0);
	assert_int_equal(m.n_props, MSG_MAX_PROPS);
	hub_message_clear(&m);
}

static void overlong_keys_and_values_are_refused(void **state)
{
	static char bag[PROPBAG_VALUE_MAX * 3 + 64];
	struct hub_message m;
	struct berr err;
	memset(&m, 0, sizeof(m));
	memset(bag, 'k', PROPBAG_KEY_MAX + 1);
	strcpy(bag + PROPBAG_KEY_MAX + 1, "=v");
	assert_int_equal(propbag_parse(bag, strlen(bag), &m, &err), -1);
	hub_message_clear(&m);
	strcpy(bag, "k=");
	memset(bag + 2, 'v', PROPBAG_VALUE_MAX + 1);
	bag[2 + PROPBAG_VALUE_MAX + 1] = '\0';
	assert_int_equal(propbag_parse(bag, strlen(bag), &m, &err), -1);
	assert_non_null(strstr(err.msg, "longer"));
	hub_message_clear(&m);
	/* Escapes count as the byte they stand for. */
	strcpy(bag, "k=");
	for (int i = 0; i < PROPBAG_VALUE_MAX; i++)
		memcpy(bag + 2 + i * 3, "%41", 3);
	bag[2 + PROPBAG_VALUE_MAX * 3] = '\0';
	assert_int_equal(propbag_parse(bag, strlen(bag), &m, &err), 0);
	assert_int_equal(strlen(m.props[0].value), PROPBAG_VALUE_MAX);
	hub_message_clear(&m);
}

static void write_encodes_keys_and_values_as_iot_hub(void **state)
{
	struct hub_message m;
	assert_int_equal(parse("$.mid=1&$.on=o&k%20x=a%2Fb", &m), 0);
	m.sys[MSG_SYS_CONNECTION_DEVICE_ID] = strdup("dev");
	m.sys[MSG_SYS_CONNECTION_MODULE_ID] = strdup("mod");
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(propbag_write(&m, 1u << MSG_SYS_OUTPUT_NAME, &sb), 0);
	assert_string_equal(sb.buf, "%24.mid=1&%24.cdid=dev&%24.cmid=mod&k%20x=a%2Fb");
	strbuf_release(&sb);
	hub_message_clear(&m);
}

static void write_then_parse_gives_the_same_properties(void **state)
{
	struct hub_message m;
	assert_int_equal(
	    parse("$.ct=application%2Fjson&$.ce=utf-8&%E2%82%AC=%26%3D%2F%3F%23%2B~", &m), 0);
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(propbag_write(&m, 0, &sb), 0);
	struct hub_message back;
	assert_int_equal(parse(sb.buf, &back), 0);
	assert_string_equal(back.sys[MSG_SYS_CONTENT_TYPE], "application/json");
	assert_string_equal(back.sys[MSG_SYS_CONTENT_ENCODING], "utf-8");
	assert_int_equal(back.n_props, 1);
	assert_string_equal(back.props[0].key, "\xe2\x82\xac");
	assert_string_equal(back.props[0].value, "&=/?#+~");
	/* The written bag never holds a character that ends a topic level. */
	assert_null(strchr(sb.buf, '/'));
	assert_null(strchr(sb.buf, '#'));
	assert_null(strchr(sb.buf, '+'));
	strbuf_release(&sb);
	hub_message_clear(&m);
	hub_message_clear(&back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(system_properties_land_in_their_fields),
	    cmocka_unit_test(encoded_system_keys_are_recognised),
	    cmocka_unit_test(application_properties_keep_their_order_and_decode),
	    cmocka_unit_test(plus_stays_a_plus),
	    cmocka_unit_test(key_without_value_has_an_empty_value),
	    cmocka_unit_test(repeated_key_keeps_the_last_value),
	    cmocka_unit_test(empty_bag_and_empty_pairs_are_fine),
	    cmocka_unit_test(bag_ends_at_a_slash),
	    cmocka_unit_test(sender_identity_cannot_be_set_by_the_sender),
	    cmocka_unit_test(malformed_bags_are_refused),
	    cmocka_unit_test(too_many_properties_are_refused),
	    cmocka_unit_test(overlong_keys_and_values_are_refused),
	    cmocka_unit_test(write_encodes_keys_and_values_as_iot_hub),
	    cmocka_unit_test(write_then_parse_gives_the_same_properties),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
