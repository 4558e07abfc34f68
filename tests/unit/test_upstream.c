/* The cloud link's pure parts: the URLs it accepts, the topic and property
 * bag a message goes upstream with, the reconnect backoff, and the
 * kernel's network change messages. */
#include "unit.h"

#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/url.h"
#include "hub/propbag.h"
#include "hub/upstream.h"
#include "hub/upstream_conn.h"

static void urls_are_read_with_their_defaults(void **state)
{
	struct url u;
	struct berr err;
	assert_int_equal(url_parse("mqtts://myhub.example.net", 1u << URL_MQTTS, &u, &err), 0);
	assert_true(u.tls);
	assert_string_equal(u.host, "myhub.example.net");
	assert_int_equal(u.port, 8883);
	assert_int_equal(url_parse("mqtt://127.0.0.1:18830", 1u << URL_MQTT, &u, &err), 0);
	assert_false(u.tls);
	assert_int_equal(u.port, 18830);
	assert_int_equal(url_parse("https://[::1]:8443/api//", 1u << URL_HTTPS, &u, &err), 0);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.path, "/api");
	assert_int_equal(u.port, 8443);
	assert_int_equal(url_parse("HTTP://h.example", 1u << URL_HTTP, &u, &err), 0);
	assert_int_equal(u.port, 80);
}

static void bad_urls_are_refused_with_the_reason(void **state)
{
	static const struct {
		const char *url;
		unsigned schemes;
		const char *why;
	} bad[] = {
	    {"http://h", 1u << URL_MQTT | 1u << URL_MQTTS,
	     "does not start with mqtt:// or mqtts://"},
	    {"mqtts://", 1u << URL_MQTTS, "no host"},
	    {"mqtts://h:0", 1u << URL_MQTTS, "the port is not 1-65535"},
	    {"mqtts://h:65536", 1u << URL_MQTTS, "the port is not 1-65535"},
	    {"mqtts://h:88x", 1u << URL_MQTTS, "unexpected"},
	    {"mqtts://user@h", 1u << URL_MQTTS, "unexpected"},
	    {"mqtts://h/x", 1u << URL_MQTTS, "an MQTT URL has no path"},
	    {"https://h/a?b=c", 1u << URL_HTTPS, "may not hold a query"},
	    {"https://[::1", 1u << URL_HTTPS, "'[' without ']'"},
	    {"https://[nothing]", 1u << URL_HTTPS, "is not an IPv6 address"},
	    {"https://a..b", 1u << URL_HTTPS, "is not a host name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct url u;
		struct berr err = {0};
		assert_int_equal(url_parse(bad[i].url, bad[i].schemes, &u, &err), -1);
		if (!strstr(err.msg, bad[i].why))
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].url, err.msg, bad[i].why);
	}
	char longer[URL_MAX + 16] = "https://";
	memset(longer + 8, 'a', URL_MAX);
	longer[URL_MAX + 8] = '\0';
	struct url u;
	struct berr err;
	assert_int_equal(url_parse(longer, 1u << URL_HTTPS, &u, &err), -1);
}

static void loopback_hosts_are_told_apart(void **state)
{
	assert_true(url_host_is_loopback("localhost"));
	assert_true(url_host_is_loopback("127.0.0.1"));
	assert_true(url_host_is_loopback("127.8.9.10"));
	assert_true(url_host_is_loopback("::1"));
	assert_false(url_host_is_loopback("128.0.0.1"));
	assert_false(url_host_is_loopback("10.0.0.1"));
	assert_false(url_host_is_loopback("localhost.example.net"));
	assert_false(url_host_is_loopback("::2"));
	assert_true(url_host_is_address("10.1.2.3"));
	assert_true(url_host_is_address("fe80::1"));
	assert_false(url_host_is_address("myhub.example.net"));
}

static void the_topic_carries_what_iothub_keeps(void **state)
{
	struct hub_message m = {0};
	struct berr err;
	const char bag[] = "$.on=temp&$.mid=m%201&$.cid=c&$.ct=application%2Fjson&$.ce=utf-8"
			   "&$.uid=u&$.to=x&$.exp=2030&$.ctime=t&$.schema=s&site=H%2F1&k=";
	assert_int_equal(propbag_parse(bag, strlen(bag), &m, &err), 0);
	m.sys[MSG_SYS_CONNECTION_DEVICE_ID] = strdup("dev");
	m.sys[MSG_SYS_CONNECTION_MODULE_ID] = strdup("a");
	struct strbuf t = STRBUF_INIT;
	assert_int_equal(upstream_topic("dev", "a", &m, &t), 0);
	assert_string_equal(t.buf, "devices/dev/modules/a/messages/events/"
				   "%24.mid=m%201&%24.cid=c&%24.ct=application%2Fjson&%24.ce=utf-8"
				   "&%24.on=temp&site=H%2F1&k=");
	strbuf_release(&t);
	hub_message_clear(&m);
	struct hub_message bare = {0};
	assert_int_equal(upstream_topic("dev", "b", &bare, &t), 0);
	assert_string_equal(t.buf, "devices/dev/modules/b/messages/events/");
	strbuf_release(&t);
	char ep[STORE_ENDPOINT_MAX];
	assert_int_equal(upstream_endpoint("a", ep, sizeof(ep)), 0);
	assert_string_equal(ep, "$upstream/a");
	char small[8];
	assert_int_equal(upstream_endpoint("abcdefgh", small, sizeof(small)), -1);
}

static void backoff_doubles_from_one_second_to_sixty_with_jitter(void **state)
{
	assert_int_equal(upstream_backoff_ms(1000, 60000, 1, 0.0), 1000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 2, 0.0), 2000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 6, 0.0), 32000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 7, 0.0), 60000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 1000, 0.0), 60000);
	/* Jitter takes off up to a quarter, never below the minimum. */
	assert_int_equal(upstream_backoff_ms(1000, 60000, 1000, 1.0), 45000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 1, 1.0), 1000);
	assert_int_equal(upstream_backoff_ms(1000, 60000, 3, 0.5), 3500);
	for (unsigned f = 1; f < 40; f++) {
		int64_t d = upstream_backoff_ms(1000, 60000, f, (double)(f % 10) / 9);
		assert_true(d >= 1000 && d <= 60000);
	}
}

/* One netlink message of type t with body b. */
static size_t nl_msg(unsigned char *buf, uint16_t type, const void *body, size_t len)
{
	struct nlmsghdr h = {.nlmsg_len = (uint32_t)NLMSG_LENGTH(len), .nlmsg_type = type};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + NLMSG_HDRLEN, body, len);
	return NLMSG_ALIGN(h.nlmsg_len);
}

static void netlink_reports_new_addresses_and_default_routes(void **state)
{
	unsigned char buf[1024];
	char what[128] = "";
	struct ifaddrmsg global = {
	    .ifa_family = AF_INET, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = 3};
	struct ifaddrmsg host = {.ifa_family = AF_INET, .ifa_scope = RT_SCOPE_HOST};
	struct ifaddrmsg link = {.ifa_family = AF_INET6, .ifa_scope = RT_SCOPE_LINK};
	struct rtmsg dflt = {.rtm_family = AF_INET6,
			     .rtm_dst_len = 0,
			     .rtm_type = RTN_UNICAST,
			     .rtm_table = RT_TABLE_MAIN};
	struct rtmsg subnet = {.rtm_family = AF_INET,
			       .rtm_dst_len = 24,
			       .rtm_type = RTN_UNICAST,
			       .rtm_table = RT_TABLE_MAIN};
	struct rtmsg local = {.rtm_family = AF_INET,
			      .rtm_dst_len = 0,
			      .rtm_type = RTN_LOCAL,
			      .rtm_table = RT_TABLE_LOCAL};

	size_t n = nl_msg(buf, RTM_NEWADDR, &global, sizeof(global));
	assert_int_equal(netwatch_parse(buf, n, what, sizeof(what)), 1);
	assert_string_equal(what, "new IPv4 address on interface 3");
	n = nl_msg(buf, RTM_NEWROUTE, &dflt, sizeof(dflt));
	assert_int_equal(netwatch_parse(buf, n, what, sizeof(what)), 1);
	assert_string_equal(what, "new IPv6 default route");
	/* Nothing that reaches upstream: loopback and link-local addresses,
	 * routes to a subnet, local routes, deletions. */
	n = nl_msg(buf, RTM_NEWADDR, &host, sizeof(host));
	n += nl_msg(buf + n, RTM_NEWADDR, &link, sizeof(link));
	n += nl_msg(buf + n, RTM_NEWROUTE, &subnet, sizeof(subnet));
	n += nl_msg(buf + n, RTM_NEWROUTE, &local, sizeof(local));
	n += nl_msg(buf + n, RTM_DELADDR, &global, sizeof(global));
	n += nl_msg(buf + n, RTM_DELROUTE, &dflt, sizeof(dflt));
	assert_int_equal(netwatch_parse(buf, n, what, sizeof(what)), 0);
	/* One that counts among several. */
	n += nl_msg(buf + n, RTM_NEWADDR, &global, sizeof(global));
	assert_int_equal(netwatch_parse(buf, n, what, sizeof(what)), 1);
}

static void netlink_lengths_are_checked(void **state)
{
	unsigned char buf[256] = {0};
	char what[64];
	struct ifaddrmsg a = {.ifa_family = AF_INET};
	size_t n = nl_msg(buf, RTM_NEWADDR, &a, sizeof(a));
	/* A length beyond the buffer, and one shorter than a header. */
	assert_int_equal(netwatch_parse(buf, n - 4, what, sizeof(what)), -1);
	struct nlmsghdr h = {.nlmsg_len = 4, .nlmsg_type = RTM_NEWADDR};
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(netwatch_parse(buf, n, what, sizeof(what)), -1);
	/* A message whose body is too short for its type is skipped. */
	h.nlmsg_len = NLMSG_LENGTH(2);
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(netwatch_parse(buf, NLMSG_ALIGN(h.nlmsg_len), what, sizeof(what)), 0);
	assert_int_equal(netwatch_parse(buf, 3, what, sizeof(what)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(urls_are_read_with_their_defaults),
	    cmocka_unit_test(bad_urls_are_refused_with_the_reason),
	    cmocka_unit_test(loopback_hosts_are_told_apart),
	    cmocka_unit_test(the_topic_carries_what_iothub_keeps),
	    cmocka_unit_test(backoff_doubles_from_one_second_to_sixty_with_jitter),
	    cmocka_unit_test(netlink_reports_new_addresses_and_default_routes),
	    cmocka_unit_test(netlink_lengths_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
