/* The CNI side of module networks: results and errors read with bounds, and
 * configuration lists run as the specification says (order, environment,
 * prevResult), here against small plugins written as shell scripts that
 * record what they were given. The real plugins run in
 * tests/e2e/test_networks.py. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/cni.h"
#include "common/fs.h"

#define RESULT                                                                                     \
	"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"br0\"},{\"name\":\"veth1\"},"       \
	"{\"name\":\"eth0\",\"mac\":\"5e:23:9c:11:99:31\",\"sandbox\":\"/run/ns\"}],"              \
	"\"ips\":[{\"interface\":1,\"address\":\"10.9.0.1/24\"},{\"interface\":2,\"address\":"     \
	"\"10.9.0.7/24\",\"gateway\":\"10.9.0.1\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}"

static void a_result_gives_the_address_inside_the_namespace(void **state)
{
	struct cni_result r;
	struct berr err;
	assert_int_equal(cni_result_parse(RESULT, strlen(RESULT), &r, &err), 0);
	assert_string_equal(r.address, "10.9.0.7");
	assert_int_equal(r.prefix, 24);
	assert_string_equal(r.gateway, "10.9.0.1");
	assert_string_equal(r.ifname, "eth0");
	assert_string_equal(r.mac, "5e:23:9c:11:99:31");
}

static void an_old_result_without_interfaces_gives_its_first_ipv4_address(void **state)
{
	const char *doc = "{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"6\",\"address\":"
			  "\"fd00::2/64\"},{\"version\":\"4\",\"address\":\"172.18.0.2/16\"}]}";
	struct cni_result r;
	struct berr err;
	assert_int_equal(cni_result_parse(doc, strlen(doc), &r, &err), 0);
	assert_string_equal(r.address, "172.18.0.2");
	assert_int_equal(r.prefix, 16);
}

static void expect_refused(const char *doc, const char *needle)
{
	struct cni_result r;
	struct berr err;
	assert_int_equal(cni_result_parse(doc, strlen(doc), &r, &err), -1);
	if (!strstr(err.msg, needle))
		fail_msg("\"%s\" does not mention \"%s\"", err.msg, needle);
}

static void hostile_results_are_refused_with_the_reason(void **state)
{
	expect_refused("[]", "expected an object");
	expect_refused("{\"ips\":[]}", "cniVersion");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"ips\":[]}", "no IPv4 address");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.300/24\"}]}",
		       "no IPv4 address");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.3/24\","
		       "\"interface\":0}]}",
		       "ips[0].interface: not an index");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{}],\"ips\":[{\"address\":"
		       "\"10.0.0.3/24\",\"interface\":-1}]}",
		       "ips[0].interface: not an index");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"ips\":{}}", "ips: expected an array");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"ips\":[7]}", "ips[0]: expected an object");
	expect_refused("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\"}", "busy (code 11)");
	char big[70 * 24 + 64];
	size_t n = (size_t)sprintf(big, "{\"cniVersion\":\"1.0.0\",\"ips\":[");
	for (int i = 0; i < 70; i++)
		n += (size_t)sprintf(big + n, "%s{\"address\":\"::%d/64\"}", i ? "," : "", i);
	sprintf(big + n, "]}");
	expect_refused(big, "more than 64 entries");
}

static void an_error_object_reads_as_its_message(void **state)
{
	const char *doc = "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"failed to allocate\","
			  "\"details\":\"no addresses left\"}";
	char msg[128];
	cni_error_message(doc, strlen(doc), msg, sizeof(msg));
	assert_string_equal(msg, "failed to allocate: no addresses left (code 7)");
	cni_error_message("not json", 8, msg, sizeof(msg));
	assert_string_equal(msg, "");
	cni_error_message(RESULT, strlen(RESULT), msg, sizeof(msg));
	assert_string_equal(msg, "");
}

/* --- running configuration lists --- */

static char dir[] = "/tmp/berth-cni-XXXXXX";

/* A plugin that appends "<name> <command> <container> <netns> <ifname>
 * <prevResult's cniVersion or none>" to the log and answers a result whose
 * cniVersion names it. */
static void write_plugin(const char *name, const char *extra)
{
	char path[128], script[2048];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(
	    script, sizeof(script),
	    "#!/bin/sh\n"
	    "in=$(cat)\n"
	    "prev=$(printf '%%s' \"$in\" | grep -o '\"prevResult\":{\"cniVersion\":\"[^\"]*\"' "
	    "| sed 's/.*:\"//; s/\"$//')\n"
	    "echo \"%s $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME ${prev:-none} "
	    "$(printf '%%s' \"$in\" | grep -c '\"name\":\"net1\"')\" >> %s/log\n"
	    "%s\n"
	    "printf '{\"cniVersion\":\"%s\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":"
	    "\"/ns\"}],\"ips\":[{\"interface\":0,\"address\":\"10.1.0.5/24\"}]}'\n",
	    name, dir, extra, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(script, f);
	fclose(f);
	chmod(path, 0755);
}

static char *read_log(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/log", dir);
	char *text = NULL;
	size_t len;
	struct berr err;
	if (fs_read_file(path, 65536, &text, &len, &err) < 0)
		return strdup("");
	unlink(path);
	return text;
}

static int setup(void **state)
{
	assert_non_null(mkdtemp(dir));
	write_plugin("first", "");
	write_plugin("second", "");
	write_plugin("broken", "echo '{\"code\":11,\"msg\":\"try again later\"}'; exit 1");
	write_plugin("loud", "head -c 300000 /dev/zero | tr '\\\\0' x; exit 0");
	return 0;
}

static int teardown(void **state)
{
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *conflist(const char *a, const char *b)
{
	static char buf[256];
	snprintf(buf, sizeof(buf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"net1\",\"plugins\":[{\"type\":\"%s\"},"
		 "{\"type\":\"%s\",\"x\":[1,2]}]}",
		 a, b);
	return buf;
}

static void add_runs_in_order_and_chains_results(void **state)
{
	struct cni_call call = {"ADD", "berth-web-1", "/run/ns/web", "eth0", dir, NULL};
	char *result = NULL;
	struct berr err;
	assert_int_equal(cni_run(&call, conflist("first", "second"), NULL, &result, &err), 0);
	char *log = read_log();
	assert_string_equal(log, "first ADD berth-web-1 /run/ns/web eth0 none 1\n"
				 "second ADD berth-web-1 /run/ns/web eth0 first 1\n");
	assert_non_null(strstr(result, "\"cniVersion\":\"second\""));
	free(log);
	free(result);
}

static void del_runs_in_reverse_with_the_add_result_and_goes_on_after_a_failure(void **state)
{
	struct cni_call call = {"DEL", "berth-web-1", "", "eth0", dir, NULL};
	struct berr err;
	const char *prev = "{\"cniVersion\":\"added\",\"ips\":[]}";
	assert_int_equal(cni_run(&call, conflist("first", "broken"), prev, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "CNI plugin broken DEL: try again later (code 11)"));
	char *log = read_log();
	assert_string_equal(log, "broken DEL berth-web-1  eth0 added 1\n"
				 "first DEL berth-web-1  eth0 added 1\n");
	free(log);
}

static void check_runs_in_order_with_the_add_result_and_skips_a_type(void **state)
{
	struct cni_call call = {"CHECK", "c1", "/ns", "eth0", dir, NULL};
	struct berr err;
	const char *prev = "{\"cniVersion\":\"added\"}";
	assert_int_equal(cni_run(&call, conflist("first", "second"), prev, NULL, &err), 0);
	char *log = read_log();
	assert_string_equal(log,
			    "first CHECK c1 /ns eth0 added 1\nsecond CHECK c1 /ns eth0 added 1\n");
	free(log);
	/* A plugin type left out is not run. */
	call.skip = "first";
	assert_int_equal(cni_run(&call, conflist("first", "second"), prev, NULL, &err), 0);
	log = read_log();
	assert_string_equal(log, "second CHECK c1 /ns eth0 added 1\n");
	free(log);
}

static void a_failed_add_stops_and_says_why(void **state)
{
	struct cni_call call = {"ADD", "c1", "/ns", "eth0", dir, NULL};
	char *result = NULL;
	struct berr err;
	assert_int_equal(cni_run(&call, conflist("broken", "second"), NULL, &result, &err), -1);
	assert_null(result);
	assert_non_null(strstr(err.msg, "try again later"));
	char *log = read_log();
	assert_string_equal(log, "broken ADD c1 /ns eth0 none 1\n");
	free(log);
}

static void a_plugin_saying_too_much_is_stopped(void **state)
{
	struct cni_call call = {"ADD", "c1", "/ns", "eth0", dir, NULL};
	char *result = NULL;
	struct berr err;
	assert_int_equal(cni_run(&call, conflist("loud", "second"), NULL, &result, &err), -1);
	assert_non_null(strstr(err.msg, "CNI plugin loud ADD: answered more than the limit"));
	free(read_log());
}

static void a_missing_plugin_is_named_with_where_it_was_looked_for(void **state)
{
	struct cni_call call = {"ADD", "c1", "/ns", "eth0", "/nonexistent:/also/not", NULL};
	char *result = NULL;
	struct berr err;
	assert_int_equal(cni_run(&call, conflist("bridge", "x"), NULL, &result, &err), -1);
	assert_non_null(strstr(err.msg, "CNI plugin bridge not found in /nonexistent:/also/not"));
	assert_int_equal(cni_run(&call, conflist("../bridge", "x"), NULL, &result, &err), -1);
	assert_non_null(strstr(err.msg, "is not a program name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_result_gives_the_address_inside_the_namespace),
	    cmocka_unit_test(an_old_result_without_interfaces_gives_its_first_ipv4_address),
	    cmocka_unit_test(hostile_results_are_refused_with_the_reason),
	    cmocka_unit_test(an_error_object_reads_as_its_message),
	    cmocka_unit_test(add_runs_in_order_and_chains_results),
	    cmocka_unit_test(del_runs_in_reverse_with_the_add_result_and_goes_on_after_a_failure),
	    cmocka_unit_test(check_runs_in_order_with_the_add_result_and_skips_a_type),
	    cmocka_unit_test(a_failed_add_stops_and_says_why),
	    cmocka_unit_test(a_plugin_saying_too_much_is_stopped),
	    cmocka_unit_test(a_missing_plugin_is_named_with_where_it_was_looked_for),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
