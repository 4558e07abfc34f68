/* instance_spec <-> spec.json and the checks every spec passes. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strv.h"
#include "shim/shim.h"

static struct instance_spec *minimal(void)
{
	struct instance_spec *s = calloc(1, sizeof(*s));
	s->name = strdup("web-1");
	strv_push(&s->layer_dirs, "/var/lib/berth/oci/layers/sha256/aa");
	strv_push(&s->layer_dirs, "/var/lib/berth/oci/layers/sha256/bb");
	strv_push(&s->args, "/bin/app");
	strv_push(&s->args, "--flag");
	strv_push(&s->env, "A=1");
	return s;
}

static struct instance_spec *round_trip(const struct instance_spec *s)
{
	char *json = NULL;
	size_t len = 0;
	struct berr err;
	assert_int_equal(instance_spec_to_json(s, &json, &len, &err), 0);
	struct instance_spec *back = NULL;
	assert_int_equal(instance_spec_from_json(json, len, "spec", &back, &err), 0);
	free(json);
	return back;
}

static void spec_round_trips_every_field(void **state)
{
	struct instance_spec *s = minimal();
	s->readonly_rootfs = true;
	s->image_digest = strdup("sha256:0123");
	s->cwd = strdup("/srv");
	s->user = strdup("app:staff");
	s->hostname = strdup("edge");
	s->n_binds = 1;
	s->binds = calloc(1, sizeof(*s->binds));
	s->binds[0] = (struct bind_mount){strdup("/data"), strdup("/in"), true};
	s->n_devices = 1;
	s->devices = calloc(1, sizeof(*s->devices));
	s->devices[0] =
	    (struct device_rule){strdup("/dev/ttyUSB0"), strdup("/dev/modem"), strdup("rw")};
	s->network = NET_HOST;
	s->userns = true;
	s->userns_base = 300000;
	s->memory = 64 << 20;
	s->memory_swap = -1;
	s->pids_limit = 50;
	s->cpu_quota_us = 50000;
	s->cpu_period_us = 100000;
	s->cpu_shares = 512;
	strv_push(&s->cap_add, "NET_ADMIN");
	strv_push(&s->cap_drop, "ALL");
	s->stop_grace_sec = 3;
	s->log_max_bytes = 4096;
	struct instance_spec *b = round_trip(s);
	assert_string_equal(b->name, "web-1");
	assert_int_equal(strv_len(b->layer_dirs), 2);
	assert_string_equal(b->layer_dirs[1], "/var/lib/berth/oci/layers/sha256/bb");
	assert_string_equal(b->args[1], "--flag");
	assert_string_equal(b->env[0], "A=1");
	assert_true(b->readonly_rootfs);
	assert_string_equal(b->image_digest, "sha256:0123");
	assert_string_equal(b->cwd, "/srv");
	assert_string_equal(b->user, "app:staff");
	assert_string_equal(b->hostname, "edge");
	assert_int_equal(b->n_binds, 1);
	assert_string_equal(b->binds[0].destination, "/in");
	assert_true(b->binds[0].readonly);
	assert_string_equal(b->devices[0].path_in, "/dev/modem");
	assert_string_equal(b->devices[0].permissions, "rw");
	assert_int_equal(b->network, NET_HOST);
	assert_true(b->userns);
	assert_int_equal(b->userns_base, 300000);
	assert_int_equal(b->memory, 64 << 20);
	assert_int_equal(b->memory_swap, -1);
	assert_int_equal(b->pids_limit, 50);
	assert_int_equal(b->cpu_quota_us, 50000);
	assert_int_equal(b->cpu_period_us, 100000);
	assert_int_equal(b->cpu_shares, 512);
	assert_string_equal(b->cap_add[0], "NET_ADMIN");
	assert_string_equal(b->cap_drop[0], "ALL");
	assert_int_equal(b->stop_grace_sec, 3);
	assert_int_equal(b->log_max_bytes, 4096);
	instance_spec_free(s);
	instance_spec_free(b);
}

static void spec_write_and_read_use_a_file(void **state)
{
	char dir[] = "/tmp/berth-spec-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/spec.json", dir);
	struct instance_spec *s = minimal();
	struct berr err;
	assert_int_equal(instance_spec_write(s, path, &err), 0);
	struct instance_spec *b = NULL;
	assert_int_equal(instance_spec_read(path, &b, &err), 0);
	assert_string_equal(b->args[0], "/bin/app");
	instance_spec_free(s);
	instance_spec_free(b);
	unlink(path);
	rmdir(dir);
}

static void instance_names_are_checked(void **state)
{
	assert_true(instance_name_valid("a"));
	assert_true(instance_name_valid("Web_1.b-2"));
	assert_false(instance_name_valid(""));
	assert_false(instance_name_valid("-x"));
	assert_false(instance_name_valid(".hidden"));
	assert_false(instance_name_valid("a/b"));
	assert_false(instance_name_valid("a b"));
	assert_false(instance_name_valid(".."));
	char longname[70];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_false(instance_name_valid(longname));
	longname[64] = '\0';
	assert_true(instance_name_valid(longname));
}

static void expect_invalid(struct instance_spec *s, const char *needle)
{
	struct berr err;
	assert_int_equal(instance_spec_validate(s, &err), -1);
	if (!strstr(err.msg, needle))
		fail_msg("\"%s\" does not mention \"%s\"", err.msg, needle);
	instance_spec_free(s);
}

static void validation_refuses_what_a_shim_cannot_run(void **state)
{
	struct instance_spec *s = minimal();
	strv_free(s->args);
	s->args = NULL;
	expect_invalid(s, "no command");

	s = minimal();
	s->rootfs = strdup("/srv/root");
	expect_invalid(s, "either image layers or a root directory");

	s = minimal();
	free(s->layer_dirs[0]);
	s->layer_dirs[0] = strdup("relative/layer");
	expect_invalid(s, "not an absolute path");

	s = minimal();
	strv_push(&s->env, "NOVALUE");
	expect_invalid(s, "not KEY=VALUE");

	s = minimal();
	s->cwd = strdup("srv");
	expect_invalid(s, "working directory");

	s = minimal();
	s->hostname = strdup("bad host");
	expect_invalid(s, "hostname");

	s = minimal();
	s->n_binds = 1;
	s->binds = calloc(1, sizeof(*s->binds));
	s->binds[0] = (struct bind_mount){strdup("/data"), strdup("/"), false};
	expect_invalid(s, "over the root");

	s = minimal();
	s->n_devices = 1;
	s->devices = calloc(1, sizeof(*s->devices));
	s->devices[0] = (struct device_rule){strdup("/dev/x"), NULL, strdup("rwx")};
	expect_invalid(s, "subset of rwm");

	s = minimal();
	s->cpu_quota_us = 1000;
	s->cpu_period_us = 10;
	expect_invalid(s, "cpu period");

	s = minimal();
	s->memory = 100 << 20;
	s->memory_swap = 50 << 20;
	expect_invalid(s, "below the memory limit");

	s = minimal();
	s->memory = -5;
	expect_invalid(s, "negative");
}

static void a_joined_network_round_trips_with_its_names(void **state)
{
	struct instance_spec *s = minimal();
	s->network = NET_JOIN;
	s->netns = strdup("/run/berth/netns/berth-web-1-0123");
	strv_push(&s->hosts, "10.88.0.5\tweb-1");
	strv_push(&s->hosts, "10.88.0.6\tdb");
	strv_push(&s->dns, "10.88.0.1");
	strv_push(&s->dns, "fd00::53");
	strv_push(&s->dns_search, "plant.local");
	strv_push(&s->dns_options, "ndots:2");
	struct instance_spec *b = round_trip(s);
	assert_int_equal(b->network, NET_JOIN);
	assert_string_equal(b->netns, "/run/berth/netns/berth-web-1-0123");
	assert_string_equal(b->hosts[1], "10.88.0.6\tdb");
	assert_null(b->hosts[2]);
	assert_string_equal(b->dns[1], "fd00::53");
	assert_string_equal(b->dns_search[0], "plant.local");
	assert_string_equal(b->dns_options[0], "ndots:2");
	instance_spec_free(s);
	instance_spec_free(b);
}

static void network_lines_must_be_one_line_each(void **state)
{
	struct instance_spec *s = minimal();
	strv_push(&s->hosts, "10.0.0.1\tok");
	strv_push(&s->hosts, "10.0.0.2 a\n10.0.0.3 b");
	expect_invalid(s, "/etc/hosts line 2 is not one line of text");

	s = minimal();
	strv_push(&s->dns, "dns.example.com");
	expect_invalid(s, "name server \"dns.example.com\" is not an IP address");

	s = minimal();
	strv_push(&s->dns, "10.0.0.2");
	strv_push(&s->dns_search, "a b");
	expect_invalid(s, "search domain 1 is not a domain name");

	s = minimal();
	strv_push(&s->dns_search, "plant.local");
	expect_invalid(s, "go with name servers");

	s = minimal();
	s->netns = strdup("/run/netns/x");
	expect_invalid(s, "a network namespace goes with network");

	s = minimal();
	s->network = NET_JOIN;
	s->netns = strdup("netns/x");
	expect_invalid(s, "not an absolute path");
}

static void reading_refuses_hostile_documents(void **state)
{
	struct instance_spec *s = NULL;
	struct berr err;
	const char *docs[][2] = {
	    {"[]", "expected an object"},
	    {"{\"name\":\"x\",\"args\":[\"/a\"]}", "either image layers"},
	    {"{\"name\":\"x\",\"rootfs\":\"/r\",\"args\":[1]}", "expected a string"},
	    {"{\"name\":\"x\",\"rootfs\":\"/r\",\"args\":[\"/a\"],\"network\":\"bridge\"}",
	     "not host, none or netns"},
	    {"{\"name\":\"x\",\"rootfs\":\"/r\",\"args\":[\"/a\"],\"network\":\"netns\"}",
	     "a network namespace goes with network"},
	    {"{\"name\":\"x\",\"rootfs\":\"/r\",\"args\":[\"/a\"],\"stop_grace_sec\":-1}",
	     "stop_grace_sec"},
	    {"{\"name\":\"../x\",\"rootfs\":\"/r\",\"args\":[\"/a\"]}", "invalid"},
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		assert_int_equal(
		    instance_spec_from_json(docs[i][0], strlen(docs[i][0]), "spec", &s, &err), -1);
		assert_null(s);
		if (!strstr(err.msg, docs[i][1]))
			fail_msg("%s: \"%s\" does not mention \"%s\"", docs[i][0], err.msg,
				 docs[i][1]);
	}
}

static void reading_bounds_the_number_of_layers(void **state)
{
	char *doc = malloc(200 * 16 + 256);
	size_t n = (size_t)sprintf(doc, "{\"name\":\"x\",\"args\":[\"/a\"],\"layer_dirs\":[");
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(doc + n, "%s\"/l/%d\"", i ? "," : "", i);
	n += (size_t)sprintf(doc + n, "]}");
	struct instance_spec *s = NULL;
	struct berr err;
	assert_int_equal(instance_spec_from_json(doc, n, "spec", &s, &err), -1);
	assert_non_null(strstr(err.msg, "over the limit"));
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(spec_round_trips_every_field),
	    cmocka_unit_test(spec_write_and_read_use_a_file),
	    cmocka_unit_test(instance_names_are_checked),
	    cmocka_unit_test(validation_refuses_what_a_shim_cannot_run),
	    cmocka_unit_test(a_joined_network_round_trips_with_its_names),
	    cmocka_unit_test(network_lines_must_be_one_line_each),
	    cmocka_unit_test(reading_refuses_hostile_documents),
	    cmocka_unit_test(reading_bounds_the_number_of_layers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
