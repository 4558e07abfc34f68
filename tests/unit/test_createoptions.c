/* Docker create options mapped onto an instance, and what is refused or
 * warned about. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "agent/createoptions.h"

static struct jpath where = {"$.m.settings.createOptions"};

static void parse_ok(const char *json, struct create_options *co)
{
	struct berr err = {0};
	if (create_options_parse(json, strlen(json), &where, co, &err) < 0)
		fail_msg("unexpected error: %s", err.msg);
}

static void expect_error(const char *json, const char *needle)
{
	struct create_options co;
	struct berr err = {0};
	assert_int_equal(create_options_parse(json, strlen(json), &where, &co, &err), -1);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, needle);
}

static char *img_ep[] = {"/bin/entry", NULL};
static char *img_cmd[] = {"serve", "--fast", NULL};

static void empty_options_keep_the_image_command_and_the_default_network(void **state)
{
	struct create_options co;
	parse_ok("", &co);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, img_cmd, &s, &err), 0);
	assert_string_equal(s.args[0], "/bin/entry");
	assert_string_equal(s.args[1], "serve");
	assert_string_equal(s.args[2], "--fast");
	assert_null(s.args[3]);
	assert_int_equal(co.net.choice, NETWORK_DEFAULT);
	assert_null(co.net.network);
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void cmd_replaces_only_the_image_cmd(void **state)
{
	struct create_options co;
	parse_ok("{\"Cmd\":[\"x\"]}", &co);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, img_cmd, &s, &err), 0);
	assert_string_equal(s.args[0], "/bin/entry");
	assert_string_equal(s.args[1], "x");
	assert_null(s.args[2]);
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void entrypoint_drops_the_image_cmd(void **state)
{
	struct create_options co;
	parse_ok("{\"Entrypoint\":\"/bin/sh\"}", &co);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, img_cmd, &s, &err), 0);
	assert_string_equal(s.args[0], "/bin/sh");
	assert_null(s.args[1]);
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void no_command_at_all_is_an_error(void **state)
{
	struct create_options co;
	parse_ok("{}", &co);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, NULL, NULL, &s, &err), -1);
	assert_non_null(strstr(err.msg, "no command"));
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void all_mapped_keys_reach_the_instance(void **state)
{
	struct create_options co;
	parse_ok("{\"Env\":[\"A=1\"],\"WorkingDir\":\"/app\",\"User\":\"1000:1000\","
		 "\"Hostname\":\"sensor\",\"Labels\":{\"k\":\"v\"},\"StopTimeout\":3,"
		 "\"HostConfig\":{\"Binds\":[\"/data:/data:ro\",\"/tmp/x:/x\"],"
		 "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/srv\",\"Target\":\"/"
		 "srv\",\"ReadOnly\":true}],"
		 "\"Memory\":67108864,\"MemorySwap\":134217728,\"CpuShares\":512,"
		 "\"CpuPeriod\":50000,\"CpuQuota\":25000,\"PidsLimit\":64,"
		 "\"CapAdd\":[\"NET_ADMIN\"],\"CapDrop\":[\"ALL\"],\"ReadonlyRootfs\":true,"
		 "\"NetworkMode\":\"none\","
		 "\"Devices\":[{\"PathOnHost\":\"/dev/ttyUSB0\",\"PathInContainer\":\"/dev/ttyS0\","
		 "\"CgroupPermissions\":\"rw\"}]}}",
		 &co);
	assert_int_equal(co.n_warnings, 0);
	assert_string_equal(co.env[0], "A=1");
	assert_string_equal(co.labels[0], "k=v");
	assert_int_equal(co.stop_timeout, 3);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, img_cmd, &s, &err), 0);
	assert_string_equal(s.cwd, "/app");
	assert_string_equal(s.user, "1000:1000");
	assert_string_equal(s.hostname, "sensor");
	assert_int_equal(s.n_binds, 3);
	assert_string_equal(s.binds[0].source, "/data");
	assert_true(s.binds[0].readonly);
	assert_false(s.binds[1].readonly);
	assert_string_equal(s.binds[2].destination, "/srv");
	assert_true(s.binds[2].readonly);
	assert_int_equal(s.memory, 67108864);
	assert_int_equal(s.memory_swap, 134217728);
	assert_int_equal(s.cpu_shares, 512);
	assert_int_equal(s.cpu_period_us, 50000);
	assert_int_equal(s.cpu_quota_us, 25000);
	assert_int_equal(s.pids_limit, 64);
	assert_string_equal(s.cap_add[0], "NET_ADMIN");
	assert_string_equal(s.cap_drop[0], "ALL");
	assert_true(s.readonly_rootfs);
	assert_int_equal(s.network, NET_NONE);
	assert_int_equal(s.n_devices, 1);
	assert_string_equal(s.devices[0].path_in, "/dev/ttyS0");
	assert_string_equal(s.devices[0].permissions, "rw");
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void nano_cpus_become_a_quota(void **state)
{
	struct create_options co;
	parse_ok("{\"HostConfig\":{\"NanoCpus\":500000000}}", &co);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, NULL, &s, &err), 0);
	assert_int_equal(s.cpu_period_us, 100000);
	assert_int_equal(s.cpu_quota_us, 50000);
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void unknown_keys_warn_once_each(void **state)
{
	struct create_options co;
	parse_ok("{\"MacAddress\":\"02:42:ac:11:00:02\",\"HostConfig\":{\"PublishAllPorts\":true,"
		 "\"LogConfig\":{}}}",
		 &co);
	assert_int_equal(co.n_warnings, 3);
	assert_non_null(strstr(co.warnings[0], "MacAddress"));
	assert_non_null(strstr(co.warnings[1], "HostConfig.PublishAllPorts"));
	assert_non_null(strstr(co.warnings[2], "HostConfig.LogConfig"));
	create_options_clear(&co);
}

static void a_network_name_puts_the_module_on_that_bridge_network(void **state)
{
	struct create_options co;
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"azure-iot-edge\"}}", &co);
	assert_int_equal(co.net.choice, NETWORK_BRIDGE);
	assert_string_equal(co.net.network, "azure-iot-edge");
	assert_int_equal(co.n_warnings, 0);
	create_options_clear(&co);
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"bridge\"}}", &co);
	assert_int_equal(co.net.choice, NETWORK_BRIDGE);
	assert_null(co.net.network);
	create_options_clear(&co);
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"host\"}}", &co);
	assert_int_equal(co.net.choice, NETWORK_HOST);
	struct instance_spec s = {0};
	struct berr err;
	assert_int_equal(create_options_apply(&co, img_ep, img_cmd, &s, &err), 0);
	assert_int_equal(s.network, NET_HOST);
	instance_spec_clear(&s);
	create_options_clear(&co);
}

static void networking_config_names_the_network_and_aliases(void **state)
{
	struct create_options co;
	parse_ok("{\"NetworkingConfig\":{\"EndpointsConfig\":{\"plant\":{\"Aliases\":"
		 "[\"opc\",\"opc.local\"]}}}}",
		 &co);
	assert_int_equal(co.net.choice, NETWORK_BRIDGE);
	assert_string_equal(co.net.network, "plant");
	assert_string_equal(co.net.aliases[0], "opc");
	assert_string_equal(co.net.aliases[1], "opc.local");
	assert_null(co.net.aliases[2]);
	create_options_clear(&co);
	/* NetworkMode wins over another endpoint, with a warning. */
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"a\"},\"NetworkingConfig\":{"
		 "\"EndpointsConfig\":{\"b\":{}}}}",
		 &co);
	assert_string_equal(co.net.network, "a");
	assert_int_equal(co.n_warnings, 1);
	create_options_clear(&co);
}

static void port_bindings_dns_and_extra_hosts_are_read(void **state)
{
	struct create_options co;
	parse_ok("{\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}},\"HostConfig\":{"
		 "\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"8080\"},{\"HostIp\":"
		 "\"127.0.0.1\",\"HostPort\":\"8081\"}],\"53/udp\":[{\"HostIp\":\"0.0.0.0\","
		 "\"HostPort\":5353}],\"9000\":null},"
		 "\"Dns\":[\"10.0.0.2\",\"fd00::53\"],\"DnsSearch\":[\"plant.local\"],"
		 "\"DnsOptions\":[\"ndots:2\"],"
		 "\"ExtraHosts\":[\"historian:10.1.2.3\",\"gw:host-gateway\",\"v6:::1\"]}}",
		 &co);
	assert_int_equal(co.n_warnings, 0);
	assert_int_equal(co.net.n_ports, 3);
	assert_int_equal(co.net.ports[0].container_port, 80);
	assert_int_equal(co.net.ports[0].host_port, 8080);
	assert_string_equal(co.net.ports[0].protocol, "tcp");
	assert_string_equal(co.net.ports[0].host_ip, "");
	assert_string_equal(co.net.ports[1].host_ip, "127.0.0.1");
	assert_int_equal(co.net.ports[2].host_port, 5353);
	assert_string_equal(co.net.ports[2].protocol, "udp");
	assert_string_equal(co.net.ports[2].host_ip, "");
	assert_string_equal(co.net.dns[1], "fd00::53");
	assert_string_equal(co.net.dns_search[0], "plant.local");
	assert_string_equal(co.net.dns_options[0], "ndots:2");
	assert_string_equal(co.net.extra_hosts[1], "gw:host-gateway");
	assert_string_equal(co.net.extra_hosts[2], "v6:::1");
	create_options_clear(&co);
}

static void port_bindings_on_the_host_network_warn(void **state)
{
	struct create_options co;
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"host\",\"PortBindings\":{\"80/tcp\":"
		 "[{\"HostPort\":\"8080\"}]}}}",
		 &co);
	assert_int_equal(co.n_warnings, 1);
	assert_non_null(strstr(co.warnings[0], "no ports are published with NetworkMode host"));
	create_options_clear(&co);
}

static void bad_network_keys_are_refused(void **state)
{
	expect_error(
	    "{\"HostConfig\":{\"NetworkMode\":\"a b\"}}",
	    "$.HostConfig.NetworkMode: \"a b\" is not host, none, bridge or a network name");
	expect_error("{\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"\"}]}}}",
		     "$.HostConfig.PortBindings['80/tcp'][0].HostPort: required");
	expect_error("{\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"70000\"}]}}}",
		     "HostPort: expected a port number");
	expect_error("{\"HostConfig\":{\"PortBindings\":{\"http\":[{\"HostPort\":\"80\"}]}}}",
		     "PortBindings.http: expected PORT or PORT/tcp");
	expect_error("{\"HostConfig\":{\"PortBindings\":{\"80\":[{\"HostPort\":\"80\"}],"
		     "\"81\":[{\"HostPort\":\"80\"}]}}}",
		     "host port 80/tcp is bound twice");
	expect_error("{\"HostConfig\":{\"PortBindings\":{\"80\":[{\"HostIp\":\"fd00::1\","
		     "\"HostPort\":\"80\"}]}}}",
		     "HostIp: expected an IPv4 address");
	expect_error("{\"HostConfig\":{\"Dns\":[\"dns.example.com\"]}}",
		     "$.HostConfig.Dns[0]: expected an IP address");
	expect_error("{\"HostConfig\":{\"ExtraHosts\":[\"nohost\"]}}",
		     "$.HostConfig.ExtraHosts[0]: expected NAME:ADDRESS");
	expect_error("{\"HostConfig\":{\"ExtraHosts\":[\"a:not-an-ip\"]}}",
		     "$.HostConfig.ExtraHosts[0]: expected NAME:ADDRESS");
	expect_error("{\"ExposedPorts\":{\"x/tcp\":{}}}", "$.ExposedPorts['x/tcp']: expected PORT");
}

static void named_volume_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"Binds\":[\"myvol:/data\"]}}",
		     "$.m.settings.createOptions: $.HostConfig.Binds[0]: source \"myvol\" must be "
		     "an absolute host path");
}

static void bind_with_dotdot_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"Binds\":[\"/data:/../etc\"]}}",
		     "$.HostConfig.Binds[0]: target");
}

static void volume_mount_type_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"v\","
		     "\"Target\":\"/d\"}]}}",
		     "$.HostConfig.Mounts[0].Type: \"volume\" mounts are not supported");
}

static void env_without_equals_is_refused(void **state)
{
	expect_error("{\"Env\":[\"A=1\",\"B\"]}", "$.Env[1]: expected NAME=VALUE");
}

static void device_outside_dev_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"Devices\":[{\"PathOnHost\":\"/etc/shadow\"}]}}",
		     "$.HostConfig.Devices[0].PathOnHost: expected a path under /dev/");
}

static void negative_memory_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"Memory\":-5}}", "$.HostConfig.Memory: -5 is outside");
}

static void nano_cpus_with_quota_is_refused(void **state)
{
	expect_error("{\"HostConfig\":{\"NanoCpus\":1000000000,\"CpuQuota\":1000}}",
		     "$.HostConfig.NanoCpus: cannot be combined");
}

static void non_object_options_are_refused(void **state)
{
	expect_error("[1,2]", "expected a JSON object");
}

static void bad_hostname_is_refused(void **state)
{
	expect_error("{\"Hostname\":\"a/b\"}", "$.Hostname: not a host name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_options_keep_the_image_command_and_the_default_network),
	    cmocka_unit_test(cmd_replaces_only_the_image_cmd),
	    cmocka_unit_test(entrypoint_drops_the_image_cmd),
	    cmocka_unit_test(no_command_at_all_is_an_error),
	    cmocka_unit_test(all_mapped_keys_reach_the_instance),
	    cmocka_unit_test(nano_cpus_become_a_quota),
	    cmocka_unit_test(unknown_keys_warn_once_each),
	    cmocka_unit_test(a_network_name_puts_the_module_on_that_bridge_network),
	    cmocka_unit_test(networking_config_names_the_network_and_aliases),
	    cmocka_unit_test(port_bindings_dns_and_extra_hosts_are_read),
	    cmocka_unit_test(port_bindings_on_the_host_network_warn),
	    cmocka_unit_test(bad_network_keys_are_refused),
	    cmocka_unit_test(named_volume_is_refused),
	    cmocka_unit_test(bind_with_dotdot_is_refused),
	    cmocka_unit_test(volume_mount_type_is_refused),
	    cmocka_unit_test(env_without_equals_is_refused),
	    cmocka_unit_test(device_outside_dev_is_refused),
	    cmocka_unit_test(negative_memory_is_refused),
	    cmocka_unit_test(nano_cpus_with_quota_is_refused),
	    cmocka_unit_test(non_object_options_are_refused),
	    cmocka_unit_test(bad_hostname_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
