/* config.json of OCI bundles to a sandbox: the supported subset, and
 * refusals naming what is not supported. */
#include "unit.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "shim/bundle.h"

static char dir[64];

static int make_bundle(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/berth-bundle-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[128];
	snprintf(p, sizeof(p), "%s/rootfs", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/vol", dir);
	return mkdir(p, 0755);
}

static int remove_bundle(void **state)
{
	struct berr err;
	return fs_remove_tree(dir, &err);
}

#define BASE_PROCESS                                                                               \
	"\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],\"cwd\":\"/\","             \
	"\"env\":[\"PATH=/bin\"]}"
#define BASE_LINUX "\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"}]"

static int parse(const char *json, struct sandbox **sb, struct berr *err)
{
	return bundle_parse(json, strlen(json), dir, "t1", sb, err);
}

static void expect_refused(const char *json, const char *needle)
{
	struct sandbox *sb = NULL;
	struct berr err;
	assert_int_equal(parse(json, &sb, &err), -1);
	assert_null(sb);
	if (!strstr(err.msg, needle))
		fail_msg("\"%s\" does not mention \"%s\"", err.msg, needle);
}

static void a_full_config_maps_onto_the_sandbox(void **state)
{
	const char *json =
	    "{\"ociVersion\":\"1.0.2\",\"hostname\":\"box\",\"root\":{\"path\":\"rootfs\","
	    "\"readonly\":true},\"annotations\":{\"a\":\"b\"},"
	    "\"process\":{\"terminal\":false,\"user\":{\"uid\":7,\"gid\":8,\"umask\":18,"
	    "\"additionalGids\":[9,10]},\"args\":[\"/bin/app\",\"x\"],\"env\":[\"A=1\"],"
	    "\"cwd\":\"/srv\",\"noNewPrivileges\":true,\"oomScoreAdj\":100,"
	    "\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_"
	    "KILL\"],"
	    "\"permitted\":[\"CAP_KILL\"],\"inheritable\":[\"CAP_KILL\"],\"ambient\":[\"CAP_KILL\"]"
	    "},"
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":100,\"hard\":18446744073709551615}]}"
	    ","
	    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"vol\","
	    "\"options\":[\"rbind\",\"ro\",\"rprivate\"]},"
	    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"options\":[\"ro\"]}],"
	    "\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"},{\"type\":\"uts\"},"
	    "{\"type\":\"network\"},{\"type\":\"cgroup\"}],"
	    "\"resources\":{\"memory\":{\"limit\":1048576},\"pids\":{\"limit\":5},"
	    "\"cpu\":{\"quota\":20000},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
	    "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
	    "\"rootfsPropagation\":\"rslave\"}}";
	struct sandbox *sb = NULL;
	struct berr err;
	if (parse(json, &sb, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(sb->hostname, "box");
	assert_true(sb->readonly_root);
	assert_int_equal(sb->clone_flags, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNET |
					      CLONE_NEWCGROUP);
	assert_true(sb->ids_given);
	assert_int_equal(sb->uid, 7);
	assert_int_equal(sb->gid, 8);
	assert_int_equal(sb->n_groups, 2);
	assert_int_equal(sb->umask, 022);
	assert_string_equal(sb->cwd, "/srv");
	assert_true(sb->no_new_privs);
	assert_int_equal(sb->oom_score_adj, 100);
	assert_int_equal(sb->caps.bounding, (1 << 5) | (1 << 0));
	assert_int_equal(sb->caps.ambient, 1 << 5);
	assert_int_equal(sb->n_rlimits, 1);
	assert_int_equal(sb->rlimits[0].resource, RLIMIT_NOFILE);
	assert_true(sb->rlimits[0].limit.rlim_max == RLIM_INFINITY);
	assert_int_equal(sb->n_mounts, 3);
	assert_int_equal(sb->mounts[1].kind, SBM_BIND);
	assert_true(sb->mounts[1].recursive);
	assert_int_equal(sb->mounts[1].flags, MS_RDONLY);
	assert_int_equal(sb->mounts[1].propagation, MS_PRIVATE | MS_REC);
	char vol[128];
	snprintf(vol, sizeof(vol), "%s/vol", dir);
	assert_string_equal(sb->mounts[1].source, vol);
	assert_int_equal(sb->mounts[2].kind, SBM_CGROUP);
	assert_int_equal(sb->limits.memory, 1048576);
	assert_int_equal(sb->limits.pids_limit, 5);
	assert_int_equal(sb->limits.cpu_period_us, 100000);
	/* The config's rules first, then the devices every instance has. */
	assert_int_equal(sb->limits.n_devices, 1 + cgroup_default_devices_count);
	assert_false(sb->limits.devices[0].allow);
	assert_true(sb->limits.devices[1].allow);
	assert_string_equal(sb->masked_paths[0], "/proc/kcore");
	assert_int_equal(sb->root_propagation, MS_SLAVE | MS_REC);
	sandbox_free(sb);
}

static void ambient_capabilities_need_inheritable_ones(void **state)
{
	const char *json =
	    "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"},"
	    "\"process\":{\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],\"cwd\":\"/\","
	    "\"capabilities\":{\"permitted\":[\"CAP_KILL\"],\"ambient\":[\"CAP_KILL\"]}},"
	    "\"linux\":{" BASE_LINUX "}}";
	struct sandbox *sb = NULL;
	struct berr err;
	assert_int_equal(parse(json, &sb, &err), 0);
	assert_int_equal(sb->caps.ambient, 0);
	sandbox_free(sb);
}

static void unknown_members_are_refused_by_name(void **state)
{
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{" BASE_LINUX ",\"intelRdt\":{}}}",
		       "linux.intelRdt is not supported");
	expect_refused(
	    "{\"ociVersion\":\"1.0.0\",\"vm\":{},\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
	    ",\"linux\":{" BASE_LINUX "}}",
	    "vm is not supported");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"},\"process\":{"
		       "\"user\":{\"uid\":0,\"gid\":0,\"username\":\"x\"},\"args\":[\"sh\"],"
		       "\"cwd\":\"/\"},\"linux\":{" BASE_LINUX "}}",
		       "process.user.username is not supported");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{" BASE_LINUX ",\"resources\":{\"memory\":{\"swappiness\":1}}}}",
		       "linux.resources.memory.swappiness is not supported");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"time\"}]}}",
		       "namespace \"time\" is not supported");
}

static void empty_optional_members_are_accepted(void **state)
{
	const char *json = "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
			   ",\"hooks\":{},\"linux\":{" BASE_LINUX ",\"sysctl\":{},\"devices\":[],"
			   "\"mountLabel\":\"\"}}";
	struct sandbox *sb = NULL;
	struct berr err;
	if (parse(json, &sb, &err) < 0)
		fail_msg("%s", err.msg);
	sandbox_free(sb);
}

static void structural_errors_are_explained(void **state)
{
	expect_refused("{\"ociVersion\":\"2.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{" BASE_LINUX "}}",
		       "ociVersion 2.0.0 is not 1.x");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}}",
		       "a mount namespace is required");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{" BASE_LINUX ",\"uidMappings\":[{\"containerID\":0,"
		       "\"hostID\":1000,\"size\":1}]}}",
		       "only with one");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"user\"}],"
		       "\"uidMappings\":[{\"containerID\":1,\"hostID\":1000,\"size\":1}],"
		       "\"gidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}}",
		       "must map id 0");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"missing\"}," BASE_PROCESS
		       ",\"linux\":{" BASE_LINUX "}}",
		       "missing");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"},\"process\":{"
		       "\"user\":{\"uid\":0,\"gid\":0},\"args\":[],\"cwd\":\"/\"},"
		       "\"linux\":{" BASE_LINUX "}}",
		       "process.args must name a program");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS
		       ",\"mounts\":[{\"destination\":\"rel\",\"type\":\"tmpfs\"}],"
		       "\"linux\":{" BASE_LINUX "}}",
		       "is not absolute");
	expect_refused("{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"},\"process\":{"
		       "\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],\"cwd\":\"/\",\"rlimits\":"
		       "[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":5}]},"
		       "\"linux\":{" BASE_LINUX "}}",
		       "soft limit above the hard limit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_full_config_maps_onto_the_sandbox, make_bundle,
					    remove_bundle),
	    cmocka_unit_test_setup_teardown(ambient_capabilities_need_inheritable_ones, make_bundle,
					    remove_bundle),
	    cmocka_unit_test_setup_teardown(unknown_members_are_refused_by_name, make_bundle,
					    remove_bundle),
	    cmocka_unit_test_setup_teardown(empty_optional_members_are_accepted, make_bundle,
					    remove_bundle),
	    cmocka_unit_test_setup_teardown(structural_errors_are_explained, make_bundle,
					    remove_bundle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
