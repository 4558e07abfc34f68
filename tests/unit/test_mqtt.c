/* The MQTT 3.1.1 codec: every packet type through encode and decode, the
 * remaining-length field at its edges, and the malformed packets the
 * standard says a server must refuse. */
#include "unit.h"

#include <string.h>

#include "hub/mqtt_codec.h"

static struct mqtt_str S(const char *s) {
	return (struct mqtt_str){s, (uint16_t)strlen(s)};
}

static int
decode_bytes(const char *bytes, size_t len, struct mqtt_packet *p)
{
	struct berr err;
	return mqtt_decode((const uint8_t *)bytes, len, p, &err);
}

/* Decodes what the buffer holds (exactly one packet). */
static int decode_sb(struct strbuf *sb, struct mqtt_packet *p)
{
	return decode_bytes(sb->buf, sb->len, p);
}

/* ---- remaining length ---- */

static void remaining_length_uses_one_to_four_bytes(void **state)
{
	static const struct {
		uint32_t v;
		size_t n;
		uint8_t b[4];
	} cases[] = {
	    {0, 1, {0x00}},
	    {127, 1, {0x7f}},
	    {128, 2, {0x80, 0x01}},
	    {16383, 2, {0xff, 0x7f}},
	    {16384, 3, {0x80, 0x80, 0x01}},
	    {2097151, 3, {0xff, 0xff, 0x7f}},
	    {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
	    {268435455, 4, {0xff, 0xff, 0xff, 0x7f}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[4];
		assert_int_equal(mqtt_remaining_length_encode(cases[i].v, out), cases[i].n);
		assert_memory_equal(out, cases[i].b, cases[i].n);
		uint8_t pkt[5] = {0xc0};
		memcpy(pkt + 1, cases[i].b, cases[i].n);
		struct mqtt_fixed_header h;
		struct berr err;
		assert_int_equal(mqtt_fixed_header_read(pkt, 1 + cases[i].n, &h, &err), 0);
		assert_int_equal(h.remaining, cases[i].v);
		assert_int_equal(h.header_len, 1 + cases[i].n);
	}
}

static void remaining_length_over_the_maximum_is_not_encoded(void **state)
{
	uint8_t out[4];
	assert_int_equal(mqtt_remaining_length_encode(268435456u, out), 0);
}

static void fixed_header_with_a_fifth_length_byte_is_malformed(void **state)
{
	const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
	struct mqtt_fixed_header h;
	struct berr err;
	assert_int_equal(mqtt_fixed_header_read(five, sizeof(five), &h, &err), -1);
	assert_non_null(strstr(err.msg, "four bytes"));
	/* Known as soon as the fourth length byte says "more follows". */
	assert_int_equal(mqtt_fixed_header_read(five, 5, &h, &err), -1);
}

static void fixed_header_asks_for_more_bytes_until_complete(void **state)
{
	const uint8_t hdr[] = {0x30, 0x80, 0x80, 0x01};
	struct mqtt_fixed_header h;
	struct berr err;
	for (size_t len = 0; len < sizeof(hdr); len++)
		assert_int_equal(mqtt_fixed_header_read(hdr, len, &h, &err), 1);
	assert_int_equal(mqtt_fixed_header_read(hdr, sizeof(hdr), &h, &err), 0);
	assert_int_equal(h.remaining, 16384);
}

static void reserved_packet_types_are_malformed(void **state)
{
	const uint8_t zero[] = {0x00, 0x00}, fifteen[] = {0xf0, 0x00};
	struct mqtt_fixed_header h;
	struct berr err;
	assert_int_equal(mqtt_fixed_header_read(zero, 2, &h, &err), -1);
	assert_int_equal(mqtt_fixed_header_read(fifteen, 2, &h, &err), -1);
	const uint8_t pingreq[] = {0xc0, 0x00};
	assert_int_equal(mqtt_fixed_header_read(pingreq, 2, &h, &err), 0);
}

/* ---- every packet type ---- */

static void connect_round_trips_with_will_user_and_password(void **state)
{
	struct mqtt_connect c = {
	    .level = 4,
	    .clean_session = true,
	    .keepalive = 30,
	    .client_id = S("dev/mod"),
	    .will = true,
	    .will_qos = 1,
	    .will_retain = true,
	    .will_topic = S("devices/dev/modules/mod/messages/events"),
	    .will_payload = (const uint8_t *)"gone",
	    .will_len = 4,
	    .has_username = true,
	    .username = S("hub/dev/mod/?api-version=2018-06-30"),
	    .has_password = true,
	    .password = (const uint8_t *)"SharedAccessSignature x",
	    .password_len = 23,
	};
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(mqtt_encode_connect(&sb, &c), 0);
	struct mqtt_packet p;
	assert_int_equal(decode_sb(&sb, &p), 0);
	assert_int_equal(p.header.type, MQTT_CONNECT);
	const struct mqtt_connect *d = &p.u.connect;
	assert_int_equal(d->level, 4);
	assert_true(d->clean_session);
	assert_int_equal(d->keepalive, 30);
	assert_int_equal(d->client_id.len, 7);
	assert_memory_equal(d->client_id.p, "dev/mod", 7);
	assert_true(d->will);
	assert_int_equal(d->will_qos, 1);
	assert_true(d->will_retain);
	assert_memory_equal(d->will_payload, "gone", 4);
	assert_true(d->has_username);
	assert_int_equal(d->username.len, c.username.len);
	assert_true(d->has_password);
	assert_int_equal(d->password_len, 23);
	strbuf_release(&sb);
}

static void connect_with_another_protocol_level_stops_after_the_level(void **state)
{
	/* MQTT 5 CONNECT: properties follow, which 3.1.1 cannot read; the
	 * caller answers CONNACK 1. */
	const char pkt[] = "\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00";
	struct mqtt_packet p;
	assert_int_equal(decode_bytes(pkt, sizeof(pkt) - 1, &p), 0);
	assert_int_equal(p.u.connect.level, 5);
}

static void connect_from_a_3_1_client_is_read_to_its_level(void **state)
{
	const char pkt[] = "\x10\x0e\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00";
	struct mqtt_packet p;
	assert_int_equal(decode_bytes(pkt, sizeof(pkt) - 1, &p), 0);
	assert_int_equal(p.u.connect.level, 3);
}

static void connect_rule_breaks_are_malformed(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"protocol name", "\x10\x0c\x00\x04MQTX\x04\x02\x00\x3c\x00\x00", 14},
	    {"reserved flag", "\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00", 14},
	    {"password without user name", "\x10\x10\x00\x04MQTT\x04\x42\x00\x3c\x00\x00\x00\x02pw",
	     18},
	    {"will QoS without will", "\x10\x0c\x00\x04MQTT\x04\x0a\x00\x3c\x00\x00", 14},
	    {"will retain without will", "\x10\x0c\x00\x04MQTT\x04\x22\x00\x3c\x00\x00", 14},
	    {"will QoS 3", "\x10\x12\x00\x04MQTT\x04\x1e\x00\x3c\x00\x00\x00\x01t\x00\x01m", 20},
	    {"truncated client id", "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x05", 14},
	    {"trailing bytes", "\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\x00", 15},
	    {"flags", "\x11\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14},
	    {"client id not UTF-8", "\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01\xff", 15},
	    {"wildcard will topic",
	     "\x10\x12\x00\x04MQTT\x04\x06\x00\x3c\x00\x00\x00\x01#\x00\x01m", 20},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mqtt_packet p;
		struct berr err;
		int rc = mqtt_decode((const uint8_t *)bad[i].bytes, bad[i].len, &p, &err);
		if (rc != -1)
			fail_msg("CONNECT with bad %s was accepted", bad[i].what);
	}
	/* The control: the CONNECT they break, whole, is taken. */
	struct mqtt_packet p;
	assert_int_equal(decode_bytes("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 14, &p), 0);
}

static void connack_round_trips_every_code(void **state)
{
	for (uint8_t code = 0; code <= 5; code++) {
		struct strbuf sb = STRBUF_INIT;
		assert_int_equal(mqtt_encode_connack(&sb, code == 0, code), 0);
		assert_int_equal(sb.len, 4);
		struct mqtt_packet p;
		assert_int_equal(decode_sb(&sb, &p), 0);
		assert_int_equal(p.header.type, MQTT_CONNACK);
		assert_int_equal(p.u.connack.code, code);
		assert_int_equal(p.u.connack.session_present, code == 0);
		strbuf_release(&sb);
	}
}

static void connack_with_session_present_and_refusal_is_malformed(void **state)
{
	struct mqtt_packet p;
	assert_int_equal(decode_bytes("\x20\x02\x01\x05", 4, &p), -1);
	assert_int_equal(decode_bytes("\x20\x02\x00\x06", 4, &p), -1);
	assert_int_equal(decode_bytes("\x20\x02\x01\x00", 4, &p), 0); /* present, accepted */
	assert_int_equal(decode_bytes("\x20\x02\x00\x05", 4, &p), 0); /* refused, no session */
}

static void publish_round_trips_at_qos_0_and_1(void **state)
{
	for (uint8_t qos = 0; qos <= 1; qos++) {
		struct mqtt_publish pub = {.dup = qos == 1,
					   .qos = qos,
					   .retain = true,
					   .topic = S("a/b"),
					   .packet_id = qos ? 7 : 0,
					   .payload = (const uint8_t *)"hello",
					   .payload_len = 5};
		struct strbuf sb = STRBUF_INIT;
		assert_int_equal(mqtt_encode_publish(&sb, &pub), 0);
		assert_int_equal(sb.len, mqtt_publish_size(3, qos, 5));
		struct mqtt_packet p;
		assert_int_equal(decode_sb(&sb, &p), 0);
		const struct mqtt_publish *d = &p.u.publish;
		assert_int_equal(d->qos, qos);
		assert_int_equal(d->dup, qos == 1);
		assert_true(d->retain);
		assert_int_equal(d->topic.len, 3);
		assert_int_equal(d->packet_id, qos ? 7 : 0);
		assert_int_equal(d->payload_len, 5);
		assert_memory_equal(d->payload, "hello", 5);
		strbuf_release(&sb);
	}
}

static void publish_with_a_large_payload_uses_a_long_length(void **state)
{
	static uint8_t payload[300000];
	memset(payload, 'x', sizeof(payload));
	struct mqtt_publish pub = {.qos = 1,
				   .topic = S("t"),
				   .packet_id = 1,
				   .payload = payload,
				   .payload_len = sizeof(payload)};
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(mqtt_encode_publish(&sb, &pub), 0);
	struct mqtt_fixed_header h;
	struct berr err;
	assert_int_equal(mqtt_fixed_header_read((uint8_t *)sb.buf, sb.len, &h, &err), 0);
	assert_int_equal(h.header_len, 4);
	struct mqtt_packet p;
	assert_int_equal(decode_sb(&sb, &p), 0);
	assert_int_equal(p.u.publish.payload_len, sizeof(payload));
	strbuf_release(&sb);
}

static void publish_rule_breaks_are_malformed(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"QoS 3", "\x36\x05\x00\x01t\x00\x01", 7},
	    {"DUP at QoS 0", "\x38\x03\x00\x01t", 5},
	    {"wildcard +", "\x30\x05\x00\x03\x61/+", 7},
	    {"wildcard #", "\x30\x03\x00\x01#", 5},
	    {"empty topic", "\x30\x02\x00\x00", 4},
	    {"encoded NUL", "\x30\x04\x00\x02\x61\x00", 6},
	    {"overlong NUL", "\x30\x04\x00\x02\xc0\x80", 6},
	    {"surrogate", "\x30\x05\x00\x03\xed\xa0\x80", 7},
	    {"bare continuation byte", "\x30\x03\x00\x01\x80", 5},
	    {"packet id 0", "\x32\x05\x00\x01t\x00\x00", 7},
	    {"truncated topic", "\x30\x03\x00\x05t", 5},
	    {"truncated packet id", "\x32\x04\x00\x01t\x00", 6},
	    {"length mismatch", "\x30\x09\x00\x01t", 5},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mqtt_packet p;
		struct berr err;
		if (mqtt_decode((const uint8_t *)bad[i].bytes, bad[i].len, &p, &err) != -1)
			fail_msg("PUBLISH with %s was accepted", bad[i].what);
	}
}

static void acks_round_trip_with_their_packet_id(void **state)
{
	const uint8_t types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
				 MQTT_UNSUBACK};
	for (size_t i = 0; i < sizeof(types); i++) {
		struct strbuf sb = STRBUF_INIT;
		assert_int_equal(mqtt_encode_ack(&sb, types[i], 0x1234), 0);
		assert_int_equal(sb.len, 4);
		assert_int_equal((uint8_t)sb.buf[0] & 15, types[i] == MQTT_PUBREL ? 2 : 0);
		struct mqtt_packet p;
		assert_int_equal(decode_sb(&sb, &p), 0);
		assert_int_equal(p.header.type, types[i]);
		assert_int_equal(p.u.packet_id, 0x1234);
		strbuf_release(&sb);
	}
}

static void acks_with_wrong_flags_or_length_are_malformed(void **state)
{
	struct mqtt_packet p;
	assert_int_equal(decode_bytes("\x41\x02\x00\x01", 4, &p), -1);	   /* PUBACK flags */
	assert_int_equal(decode_bytes("\x60\x02\x00\x01", 4, &p), -1);	   /* PUBREL without 0010 */
	assert_int_equal(decode_bytes("\x40\x03\x00\x01\x00", 5, &p), -1); /* trailing byte */
	assert_int_equal(decode_bytes("\x40\x01\x00", 3, &p), -1);	   /* truncated */
	assert_int_equal(decode_bytes("\x40\x02\x00\x00", 4, &p), -1);	   /* packet id 0 */
	assert_int_equal(decode_bytes("\x40\x02\x00\x01", 4, &p), 0);
	assert_int_equal(decode_bytes("\x62\x02\x00\x01", 4, &p), 0);
}

static void subscribe_round_trips_several_filters(void **state)
{
	struct mqtt_subscribe s = {.packet_id = 9, .n = 3};
	s.items[0] = (struct mqtt_topic_request){S("devices/d/modules/m/#"), 1};
	s.items[1] = (struct mqtt_topic_request){S("$iothub/twin/res/#"), 0};
	s.items[2] = (struct mqtt_topic_request){S("a/+/c"), 2};
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(mqtt_encode_subscribe(&sb, MQTT_SUBSCRIBE, &s), 0);
	assert_int_equal((uint8_t)sb.buf[0], 0x82);
	struct mqtt_packet p;
	assert_int_equal(decode_sb(&sb, &p), 0);
	assert_int_equal(p.u.subscribe.packet_id, 9);
	assert_int_equal(p.u.subscribe.n, 3);
	assert_int_equal(p.u.subscribe.items[2].qos, 2);
	assert_memory_equal(p.u.subscribe.items[1].filter.p, "$iothub/twin/res/#", 18);
	strbuf_release(&sb);
}

static void unsubscribe_round_trips(void **state)
{
	struct mqtt_subscribe s = {.packet_id = 3, .n = 1};
	s.items[0].filter = S("a/#");
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(mqtt_encode_subscribe(&sb, MQTT_UNSUBSCRIBE, &s), 0);
	struct mqtt_packet p;
	assert_int_equal(decode_sb(&sb, &p), 0);
	assert_int_equal(p.header.type, MQTT_UNSUBSCRIBE);
	assert_int_equal(p.u.subscribe.n, 1);
	assert_int_equal(p.u.subscribe.items[0].filter.len, 3);
	strbuf_release(&sb);
}

static void subscribe_rule_breaks_are_malformed(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"flags 0000", "\x80\x06\x00\x01\x00\x01#\x00", 8},
	    {"no filter", "\x82\x02\x00\x01", 4},
	    {"requested QoS 3", "\x82\x06\x00\x01\x00\x01#\x03", 8},
	    {"reserved QoS bits", "\x82\x06\x00\x01\x00\x01#\x81", 8},
	    {"'#' not last", "\x82\x08\x00\x01\x00\x03#/a\x00", 10},
	    {"'+' inside a level", "\x82\x07\x00\x01\x00\x02\x61+\x00", 9},
	    {"empty filter", "\x82\x05\x00\x01\x00\x00\x00", 7},
	    {"missing QoS byte", "\x82\x05\x00\x01\x00\x01#", 7},
	    {"UNSUBSCRIBE without filter", "\xa2\x02\x00\x01", 4},
	    {"packet id 0", "\x82\x06\x00\x00\x00\x01#\x00", 8},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mqtt_packet p;
		struct berr err;
		if (mqtt_decode((const uint8_t *)bad[i].bytes, bad[i].len, &p, &err) != -1)
			fail_msg("SUBSCRIBE with %s was accepted", bad[i].what);
	}
}

static void subscribe_with_too_many_filters_is_refused(void **state)
{
	/* packet id, then MQTT_MAX_FILTERS + 1 times the filter "a" at QoS 0 */
	uint8_t body[2 + (MQTT_MAX_FILTERS + 1) * 4] = {0, 1};
	for (size_t i = 0; i <= MQTT_MAX_FILTERS; i++)
		memcpy(body + 2 + i * 4,
		       "\x00\x01"
		       "a"
		       "\x00",
		       4);
	uint8_t pkt[5 + sizeof(body)] = {0x82};
	size_t n = mqtt_remaining_length_encode(sizeof(body), pkt + 1);
	memcpy(pkt + 1 + n, body, sizeof(body));
	struct mqtt_packet p;
	struct berr err;
	assert_int_equal(mqtt_decode(pkt, 1 + n + sizeof(body), &p, &err), -1);
	assert_non_null(strstr(err.msg, "more than"));
	/* One filter fewer is fine. */
	size_t len = sizeof(body) - 4;
	n = mqtt_remaining_length_encode((uint32_t)len, pkt + 1);
	memcpy(pkt + 1 + n, body, len);
	assert_int_equal(mqtt_decode(pkt, 1 + n + len, &p, &err), 0);
	assert_int_equal(p.u.subscribe.n, MQTT_MAX_FILTERS);
}

static void suback_round_trips_with_a_refusal(void **state)
{
	const uint8_t codes[] = {0, 1, MQTT_SUBACK_FAILURE};
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(mqtt_encode_suback(&sb, 5, codes, 3), 0);
	struct mqtt_packet p;
	assert_int_equal(decode_sb(&sb, &p), 0);
	assert_int_equal(p.u.suback.packet_id, 5);
	assert_int_equal(p.u.suback.n, 3);
	assert_int_equal(p.u.suback.codes[2], 0x80);
	strbuf_release(&sb);
	assert_int_equal(decode_bytes("\x90\x03\x00\x01\x03", 5, &p), -1);
}

static void empty_packets_round_trip(void **state)
{
	const uint8_t types[] = {MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT};
	for (size_t i = 0; i < sizeof(types); i++) {
		struct strbuf sb = STRBUF_INIT;
		assert_int_equal(mqtt_encode_empty(&sb, types[i]), 0);
		assert_int_equal(sb.len, 2);
		struct mqtt_packet p;
		assert_int_equal(decode_sb(&sb, &p), 0);
		assert_int_equal(p.header.type, types[i]);
		strbuf_release(&sb);
	}
	struct mqtt_packet p;
	assert_int_equal(decode_bytes("\xc1\x00", 2, &p), -1);	   /* PINGREQ flags */
	assert_int_equal(decode_bytes("\xe0\x01\x00", 3, &p), -1); /* DISCONNECT with a body */
}

static void encoders_leave_a_full_buffer_as_it_was(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	sb.max = 8;
	assert_int_equal(strbuf_append(&sb, "abc", 3), 0);
	struct mqtt_publish pub = {
	    .topic = S("a/long/topic"), .payload = (const uint8_t *)"x", .payload_len = 1};
	assert_int_equal(mqtt_encode_publish(&sb, &pub), -1);
	assert_int_equal(sb.len, 3);
	assert_string_equal(sb.buf, "abc");
	strbuf_release(&sb);
}

/* ---- strings and topics ---- */

static void utf8_follows_rfc3629_and_refuses_nul(void **state)
{
	assert_true(mqtt_utf8_valid("plain", 5));
	assert_true(mqtt_utf8_valid("\xc3\xa9", 2));	     /* é */
	assert_true(mqtt_utf8_valid("\xe2\x82\xac", 3));     /* € */
	assert_true(mqtt_utf8_valid("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
	assert_true(mqtt_utf8_valid("\xef\xbb\xbf", 3));     /* BOM is allowed */
	assert_false(mqtt_utf8_valid("a\0b", 3));
	assert_false(mqtt_utf8_valid("\xc0\x80", 2));	      /* overlong NUL */
	assert_false(mqtt_utf8_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
	assert_false(mqtt_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(mqtt_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(mqtt_utf8_valid("\xc3", 1));	      /* truncated */
	assert_false(mqtt_utf8_valid("\xff", 1));
}

static void topic_filters_place_wildcards_by_whole_levels(void **state)
{
	static const char *ok[] = {"#",
				   "+",
				   "a/#",
				   "a/+/c",
				   "+/+",
				   "/+",
				   "a//b",
				   "$iothub/twin/res/#",
				   "sport/tennis/+/#"};
	static const char *bad[] = {"", "a#", "a/#/b", "a+", "+a", "a/b+/c", "##", "#/"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(mqtt_topic_filter_valid(ok[i], strlen(ok[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (mqtt_topic_filter_valid(bad[i], strlen(bad[i])))
			fail_msg("filter \"%s\" was accepted", bad[i]);
	assert_false(mqtt_topic_name_valid("a/+", 3));
	assert_false(mqtt_topic_name_valid("", 0));
	assert_true(mqtt_topic_name_valid("a b/$c", 6));
}

static void topic_matching_follows_the_standard(void **state)
{
	static const struct {
		const char *filter, *topic;
		bool match;
	} cases[] = {
	    {"a/b", "a/b", true},
	    {"a/b", "a/c", false},
	    {"a/b", "a/b/c", false},
	    {"a/+", "a/b", true},
	    {"a/+", "a/b/c", false},
	    {"a/+", "a", false},
	    {"a/+", "a/", true},
	    {"a/#", "a", true},
	    {"a/#", "a/b/c", true},
	    {"a/#", "ab", false},
	    {"#", "a/b/c", true},
	    {"+", "a", true},
	    {"+", "/a", false},
	    {"+/+", "/a", true},
	    {"/+", "/a", true},
	    {"+/b/#", "x/b", true},
	    {"devices/d/modules/m/#", "devices/d/modules/m/inputs/in1/%24.cdid=d", true},
	    {"devices/d/modules/m/#", "devices/d/modules/mm/inputs/in1/", false},
	    /* '$' topics never match a wildcard at the first level */
	    {"#", "$iothub/twin/res/200/?$rid=1", false},
	    {"+/twin/#", "$iothub/twin/res", false},
	    {"$iothub/#", "$iothub/twin/res/200/?$rid=1", true},
	    {"$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", true},
	    {"$iothub/+/res/#", "$iothub/twin/res/200", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool m = mqtt_topic_matches(cases[i].filter, strlen(cases[i].filter),
					    cases[i].topic, strlen(cases[i].topic));
		if (m != cases[i].match)
			fail_msg("\"%s\" vs \"%s\": got %d", cases[i].filter, cases[i].topic, m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(remaining_length_uses_one_to_four_bytes),
	    cmocka_unit_test(remaining_length_over_the_maximum_is_not_encoded),
	    cmocka_unit_test(fixed_header_with_a_fifth_length_byte_is_malformed),
	    cmocka_unit_test(fixed_header_asks_for_more_bytes_until_complete),
	    cmocka_unit_test(reserved_packet_types_are_malformed),
	    cmocka_unit_test(connect_round_trips_with_will_user_and_password),
	    cmocka_unit_test(connect_with_another_protocol_level_stops_after_the_level),
	    cmocka_unit_test(connect_from_a_3_1_client_is_read_to_its_level),
	    cmocka_unit_test(connect_rule_breaks_are_malformed),
	    cmocka_unit_test(connack_round_trips_every_code),
	    cmocka_unit_test(connack_with_session_present_and_refusal_is_malformed),
	    cmocka_unit_test(publish_round_trips_at_qos_0_and_1),
	    cmocka_unit_test(publish_with_a_large_payload_uses_a_long_length),
	    cmocka_unit_test(publish_rule_breaks_are_malformed),
	    cmocka_unit_test(acks_round_trip_with_their_packet_id),
	    cmocka_unit_test(acks_with_wrong_flags_or_length_are_malformed),
	    cmocka_unit_test(subscribe_round_trips_several_filters),
	    cmocka_unit_test(unsubscribe_round_trips),
	    cmocka_unit_test(subscribe_rule_breaks_are_malformed),
	    cmocka_unit_test(subscribe_with_too_many_filters_is_refused),
	    cmocka_unit_test(suback_round_trips_with_a_refusal),
	    cmocka_unit_test(empty_packets_round_trip),
	    cmocka_unit_test(encoders_leave_a_full_buffer_as_it_was),
	    cmocka_unit_test(utf8_follows_rfc3629_and_refuses_nul),
	    cmocka_unit_test(topic_filters_place_wildcards_by_whole_levels),
	    cmocka_unit_test(topic_matching_follows_the_standard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
