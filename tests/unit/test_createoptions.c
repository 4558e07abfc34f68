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

static void empty_options_keep_the_image_command_and_host_network(void **state)
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
	assert_int_equal(s.network, NET_HOST);
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
	parse_ok("{\"ExposedPorts\":{\"80/tcp\":{}},\"HostConfig\":{\"PortBindings\":{},"
		 "\"LogConfig\":{}}}",
		 &co);
	assert_int_equal(co.n_warnings, 3);
	assert_non_null(strstr(co.warnings[0], "ExposedPorts"));
	assert_non_null(strstr(co.warnings[1], "HostConfig.PortBindings"));
	assert_non_null(strstr(co.warnings[2], "HostConfig.LogConfig"));
	create_options_clear(&co);
}

static void custom_network_warns_and_uses_host(void **state)
{
	struct create_options co;
	parse_ok("{\"HostConfig\":{\"NetworkMode\":\"azure-iot-edge\"}}", &co);
	assert_int_equal(co.network, NET_HOST);
	assert_int_equal(co.n_warnings, 1);
	assert_non_null(strstr(co.warnings[0], "azure-iot-edge"));
	create_options_clear(&co);
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
	    cmocka_unit_test(empty_options_keep_the_image_command_and_host_network),
	    cmocka_unit_test(cmd_replaces_only_the_image_cmd),
	    cmocka_unit_test(entrypoint_drops_the_image_cmd),
	    cmocka_unit_test(no_command_at_all_is_an_error),
	    cmocka_unit_test(all_mapped_keys_reach_the_instance),
	    cmocka_unit_test(nano_cpus_become_a_quota),
	    cmocka_unit_test(unknown_keys_warn_once_each),
	    cmocka_unit_test(custom_network_warns_and_uses_host),
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
