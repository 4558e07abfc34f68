/* The daemon config: defaults, and every refusal naming its JSON path. */
#include "unit.h"

#include <string.h>

#include "agent/config.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define BASE                                                                                       \
	"\"device_id\":\"Hannover01\",\"iothub_hostname\":\"myhub.example.net\",\"device_key\":"   \
	"\"" KEY "\""

static struct agent_config *parse_ok(const char *text)
{
	struct agent_config *cfg = NULL;
	struct berr err = {0};
	int rc = agent_config_parse(text, strlen(text), "config t", &cfg, &err);
	if (rc < 0)
		fail_msg("unexpected error: %s", err.msg);
	return cfg;
}

static void expect_error(const char *text, const char *needle)
{
	struct agent_config *cfg = NULL;
	struct berr err = {0};
	assert_int_equal(agent_config_parse(text, strlen(text), "config t", &cfg, &err), -1);
	assert_null(cfg);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, needle);
}

static void minimal_config_gets_defaults(void **state)
{
	struct agent_config *cfg = parse_ok("{" BASE "}");
	assert_string_equal(cfg->device_id, "Hannover01");
	assert_int_equal(cfg->restart_backoff_unit_ms, 10000);
	assert_int_equal(cfg->reconcile_interval_ms, 5000);
	assert_int_equal(cfg->token_ttl_secs, 3600);
	assert_true(cfg->stop_modules_on_exit);
	assert_false(cfg->allow_privileged);
	assert_true(cfg->hub_enabled);
	assert_null(cfg->root);
	assert_null(cfg->deployment_file);
	agent_config_free(cfg);
}

static void full_config_is_read(void **state)
{
	struct agent_config *cfg = parse_ok(
	    "{" BASE
	    ",\"root\":\"/var/lib/b\",\"run\":\"/run/b\",\"deployment_file\":\"/etc/d.json\","
	    "\"registries\":{\"127.0.0.1:5000\":{\"insecure\":true},"
	    "\"myacr.example.io\":{\"username\":\"u\",\"password\":\"p\"}},"
	    "\"hub\":{\"store\":\"/data/hub\",\"listen_tcp\":\"127.0.0.1:1883\"},"
	    "\"upstream\":{\"url\":\"mqtts://myhub.example.net:8883\",\"ca_file\":\"/etc/ca.pem\"},"
	    "\"restart_backoff_unit_ms\":50,\"stop_modules_on_exit\":false,\"allow_privileged\":"
	    "true}");
	assert_string_equal(cfg->root, "/var/lib/b");
	assert_string_equal(cfg->deployment_file, "/etc/d.json");
	assert_int_equal(cfg->n_registries, 2);
	assert_true(cfg->registries[0].insecure);
	assert_string_equal(cfg->registries[1].username, "u");
	assert_string_equal(cfg->hub_store, "/data/hub");
	assert_string_equal(cfg->hub_listen_tcp, "127.0.0.1:1883");
	assert_string_equal(cfg->upstream_url, "mqtts://myhub.example.net:8883");
	assert_int_equal(cfg->restart_backoff_unit_ms, 50);
	assert_false(cfg->stop_modules_on_exit);
	assert_true(cfg->allow_privileged);
	agent_config_free(cfg);
}

static void missing_device_id_names_path(void **state)
{
	expect_error("{\"iothub_hostname\":\"h\",\"device_key\":\"" KEY "\"}",
		     "config t: $.device_id: required but missing");
}

static void bad_device_key_is_refused(void **state)
{
	expect_error(
	    "{\"device_id\":\"d\",\"iothub_hostname\":\"h.example.net\",\"device_key\":\"not "
	    "base64!\"}",
	    "$.device_key: expected a base64 key");
}

static void device_id_with_topic_wildcard_is_refused(void **state)
{
	expect_error("{\"device_id\":\"a/#\",\"iothub_hostname\":\"h\",\"device_key\":\"" KEY "\"}",
		     "$.device_id: must be");
}

static void unknown_option_is_refused(void **state)
{
	expect_error("{" BASE ",\"restart_backof_unit_ms\":5}",
		     "$.restart_backof_unit_ms: unknown option");
}

static void relative_root_is_refused(void **state)
{
	expect_error("{" BASE ",\"root\":\"var/lib\"}", "$.root: must be an absolute path");
}

static void registry_password_without_user_is_refused(void **state)
{
	expect_error("{" BASE ",\"registries\":{\"r.io\":{\"password\":\"p\"}}}",
		     "$.registries['r.io']: username and password go together");
}

static void registry_unknown_option_is_refused(void **state)
{
	expect_error("{" BASE ",\"registries\":{\"r.io\":{\"insecur\":true}}}",
		     "$.registries['r.io'].insecur: unknown option");
}

static void hub_listen_tcp_needs_a_port(void **state)
{
	expect_error("{" BASE ",\"hub\":{\"listen_tcp\":\"127.0.0.1\"}}",
		     "$.hub.listen_tcp: expected HOST:PORT");
}

static void upstream_needs_mqtt_url(void **state)
{
	expect_error("{" BASE ",\"upstream\":{\"url\":\"http://x\"}}",
		     "$.upstream.url: \"http://x\" does not start with mqtt:// or mqtts://");
}

static void upstream_defaults_to_iothub_identities_and_rest_url(void **state)
{
	struct agent_config *cfg =
	    parse_ok("{" BASE ",\"upstream\":{\"url\":\"mqtts://myhub.example.net\"}}");
	assert_string_equal(cfg->upstream_rest_url, "https://myhub.example.net");
	assert_true(cfg->upstream_identities);
	assert_false(cfg->upstream_insecure);
	agent_config_free(cfg);
	cfg = parse_ok("{" BASE ",\"upstream\":{\"url\":\"mqtt://127.0.0.1:1883\","
		       "\"rest_url\":\"http://[::1]:8080/\",\"identities\":\"none\"}}");
	assert_string_equal(cfg->upstream_rest_url, "http://[::1]:8080/");
	assert_false(cfg->upstream_identities);
	agent_config_free(cfg);
}

static void upstream_plain_text_is_for_loopback_unless_insecure(void **state)
{
	expect_error("{" BASE ",\"upstream\":{\"url\":\"mqtt://myhub.example.net\"}}",
		     "$.upstream.url: plain text to myhub.example.net; use TLS, or set");
	expect_error("{" BASE ",\"upstream\":{\"url\":\"mqtts://h.example\","
		     "\"rest_url\":\"http://10.0.0.1\"}}",
		     "$.upstream.rest_url: plain text to 10.0.0.1");
	struct agent_config *cfg = parse_ok("{" BASE ",\"upstream\":{\"url\":\"mqtt://10.0.0.1\","
					    "\"rest_url\":\"http://10.0.0.1\",\"insecure\":true}}");
	assert_true(cfg->upstream_insecure);
	agent_config_free(cfg);
}

static void upstream_refuses_unknown_identities_and_options(void **state)
{
	expect_error("{" BASE
		     ",\"upstream\":{\"url\":\"mqtts://h.example\",\"identities\":\"dps\"}}",
		     "$.upstream.identities: expected \"iothub\" or \"none\"");
	expect_error("{" BASE ",\"upstream\":{\"url\":\"mqtts://h.example\",\"window\":5}}",
		     "$.upstream.window: unknown option");
	expect_error("{" BASE ",\"upstream\":{\"url\":\"mqtts://h.example/path\"}}",
		     "an MQTT URL has no path");
}

static void backoff_unit_must_not_be_negative(void **state)
{
	expect_error("{" BASE ",\"restart_backoff_unit_ms\":-1}",
		     "$.restart_backoff_unit_ms: -1 is outside 0..300000");
}

static void wrong_type_is_named(void **state)
{
	expect_error("{" BASE ",\"stop_modules_on_exit\":\"no\"}",
		     "$.stop_modules_on_exit: expected true or false");
}

static void malformed_json_is_refused(void **state)
{
	expect_error("{\"device_id\": ", "config t: malformed JSON");
}

static void iothub_hostname_needs_a_dot(void **state)
{
	expect_error("{\"device_id\":\"d\",\"iothub_hostname\":\"myhub\",\"device_key\":\"" KEY
		     "\"}",
		     "$.iothub_hostname: \"myhub\" has no dot");
	struct agent_config *cfg = parse_ok("{" BASE "}");
	assert_string_equal(cfg->iothub_hostname, "myhub.example.net");
	agent_config_free(cfg);
}

static void gateway_and_edge_ca_defaults_and_options(void **state)
{
	struct agent_config *cfg = parse_ok("{" BASE "}");
	assert_true(cfg->gateway_enabled);
	assert_string_equal(cfg->gateway_address, "127.0.0.1");
	assert_int_equal(cfg->gateway_mqtt_port, 8883);
	assert_int_equal(cfg->gateway_https_port, 443);
	assert_null(cfg->edge_ca_cert);
	assert_null(cfg->trust_bundle);
	agent_config_free(cfg);
	cfg = parse_ok("{" BASE ",\"edge_ca\":{\"cert\":\"/etc/ca.pem\",\"key\":\"/etc/ca.key\"},"
		       "\"trust_bundle\":\"/etc/t.pem\",\"manifest_trust_bundle\":\"/etc/m.pem\","
		       "\"hub\":{\"gateway\":{\"address\":\"127.0.0.7\",\"mqtt_port\":18883,"
		       "\"https_port\":10443}}}");
	assert_string_equal(cfg->edge_ca_cert, "/etc/ca.pem");
	assert_string_equal(cfg->edge_ca_key, "/etc/ca.key");
	assert_string_equal(cfg->trust_bundle, "/etc/t.pem");
	assert_string_equal(cfg->manifest_trust_bundle, "/etc/m.pem");
	assert_string_equal(cfg->gateway_address, "127.0.0.7");
	assert_int_equal(cfg->gateway_mqtt_port, 18883);
	assert_int_equal(cfg->gateway_https_port, 10443);
	agent_config_free(cfg);
}

static void gateway_and_edge_ca_refusals(void **state)
{
	expect_error("{" BASE ",\"edge_ca\":{\"cert\":\"/etc/ca.pem\"}}",
		     "$.edge_ca: cert and key go together");
	expect_error("{" BASE ",\"edge_ca\":{\"cert\":\"ca.pem\",\"key\":\"/k\"}}",
		     "$.edge_ca.cert: must be an absolute path");
	expect_error("{" BASE ",\"hub\":{\"gateway\":{\"address\":\"10.0.0.1\"}}}",
		     "$.hub.gateway.address: expected a loopback address");
	expect_error("{" BASE ",\"hub\":{\"gateway\":{\"mqtt_port\":443}}}",
		     "mqtt_port and https_port must differ");
	expect_error("{" BASE ",\"hub\":{\"gateway\":{\"port\":1}}}",
		     "$.hub.gateway.port: unknown option");
}

static void registry_lookup_uses_the_reference_host(void **state)
{
	struct agent_config *cfg =
	    parse_ok("{" BASE ",\"registries\":{\"127.0.0.1:5000\":{\"insecure\":true}}}");
	assert_non_null(agent_config_registry(cfg, "127.0.0.1:5000/app:1"));
	assert_null(agent_config_registry(cfg, "127.0.0.1:5001/app:1"));
	assert_null(agent_config_registry(cfg, "library/app:1"));
	char host[64];
	image_ref_registry("busybox", host, sizeof(host));
	assert_string_equal(host, "docker.io");
	image_ref_registry("localhost/x:1", host, sizeof(host));
	assert_string_equal(host, "localhost");
	agent_config_free(cfg);
}

static void networks_default_network_and_cni_path_are_read(void **state)
{
	struct agent_config *cfg =
	    parse_ok("{" BASE ",\"networks\":{\"azure-iot-edge\":{\"subnet\":\"10.88.0.0/16\"},"
		     "\"plant\":{\"subnet\":\"172.20.4.0/24\",\"bridge\":\"plant0\"}},"
		     "\"default_network\":\"plant\",\"cni_path\":\"/opt/cni/bin:/usr/lib/cni\"}");
	assert_int_equal(cfg->n_networks, 2);
	assert_string_equal(cfg->networks[0].name, "azure-iot-edge");
	assert_string_equal(cfg->networks[0].subnet, "10.88.0.0/16");
	assert_null(cfg->networks[0].bridge);
	assert_string_equal(cfg->networks[1].bridge, "plant0");
	assert_string_equal(cfg->default_network, "plant");
	assert_string_equal(cfg->cni_path, "/opt/cni/bin:/usr/lib/cni");
	agent_config_free(cfg);
	cfg = parse_ok("{" BASE "}");
	assert_string_equal(cfg->default_network, "bridge");
	assert_null(cfg->cni_path);
	assert_int_equal(cfg->n_networks, 0);
	agent_config_free(cfg);
}

static void bad_networks_are_refused_by_path(void **state)
{
	expect_error("{" BASE ",\"networks\":{\"n\":{\"subnet\":\"10.88.0.1/16\"}}}",
		     "$.networks.n.subnet: expected an IPv4 subnet a.b.c.d/n with n from 8 to 29 "
		     "and the host bits zero");
	expect_error("{" BASE ",\"networks\":{\"n\":{\"subnet\":\"fd00::/64\"}}}",
		     "$.networks.n.subnet: expected an IPv4 subnet");
	expect_error("{" BASE ",\"networks\":{\"n\":{\"subnet\":\"10.0.0.0/30\"}}}",
		     "$.networks.n.subnet: expected an IPv4 subnet");
	expect_error("{" BASE ",\"networks\":{\"n\":{}}}", "$.networks.n.subnet");
	expect_error("{" BASE ",\"networks\":{\"host\":{\"subnet\":\"10.1.0.0/16\"}}}",
		     "$.networks.host: not a network name");
	expect_error("{" BASE ",\"networks\":{\"a\":{\"subnet\":\"10.1.0.0/16\"},"
		     "\"b\":{\"subnet\":\"10.1.2.0/24\"}}}",
		     "$.networks.b: subnet 10.1.2.0/24 overlaps 10.1.0.0/16 of network a");
	expect_error("{" BASE ",\"networks\":{\"a\":{\"subnet\":\"10.1.0.0/16\",\"bridge\":"
		     "\"br0\"},\"b\":{\"subnet\":\"10.2.0.0/16\",\"bridge\":\"br0\"}}}",
		     "$.networks.b: bridge br0 is network a's too");
	expect_error("{" BASE ",\"networks\":{\"a\":{\"subnet\":\"10.1.0.0/16\",\"bridge\":"
		     "\"a-bridge-name-too-long\"}}}",
		     "$.networks.a.bridge: not an interface name");
	expect_error("{" BASE ",\"networks\":{\"a\":{\"subnet\":\"10.1.0.0/16\",\"mtu\":1400}}}",
		     "$.networks.a.mtu: unknown option");
	expect_error("{" BASE ",\"default_network\":\"a b\"}",
		     "$.default_network: expected bridge, host, none or a network's name");
	expect_error("{" BASE ",\"cni_path\":\"lib/cni\"}",
		     "$.cni_path: expected absolute directories");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(minimal_config_gets_defaults),
	    cmocka_unit_test(full_config_is_read),
	    cmocka_unit_test(missing_device_id_names_path),
	    cmocka_unit_test(bad_device_key_is_refused),
	    cmocka_unit_test(device_id_with_topic_wildcard_is_refused),
	    cmocka_unit_test(unknown_option_is_refused),
	    cmocka_unit_test(relative_root_is_refused),
	    cmocka_unit_test(registry_password_without_user_is_refused),
	    cmocka_unit_test(registry_unknown_option_is_refused),
	    cmocka_unit_test(hub_listen_tcp_needs_a_port),
	    cmocka_unit_test(upstream_needs_mqtt_url),
	    cmocka_unit_test(upstream_defaults_to_iothub_identities_and_rest_url),
	    cmocka_unit_test(upstream_plain_text_is_for_loopback_unless_insecure),
	    cmocka_unit_test(upstream_refuses_unknown_identities_and_options),
	    cmocka_unit_test(backoff_unit_must_not_be_negative),
	    cmocka_unit_test(wrong_type_is_named),
	    cmocka_unit_test(malformed_json_is_refused),
	    cmocka_unit_test(registry_lookup_uses_the_reference_host),
	    cmocka_unit_test(networks_default_network_and_cni_path_are_read),
	    cmocka_unit_test(bad_networks_are_refused_by_path),
	    cmocka_unit_test(iothub_hostname_needs_a_dot),
	    cmocka_unit_test(gateway_and_edge_ca_defaults_and_options),
	    cmocka_unit_test(gateway_and_edge_ca_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
