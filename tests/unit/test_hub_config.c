/* The hub's config file as the daemon writes it: defaults, both route
 * forms, module keys, and clear refusals. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/config.h"
#include "hub/store.h"

#define BASE                                                                                       \
	"\"device_id\":\"Hannover01\",\"iothub_hostname\":\"h.example.net\","                      \
	"\"device_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"state_dir\":\"/s\""

static int parse(const char *json, struct hub_config **c, struct berr *err)
{
	return hub_config_parse(json, strlen(json), "hub.json", c, err);
}

static void minimal_config_gets_the_defaults(void **state)
{
	struct hub_config *c;
	struct berr err;
	assert_int_equal(parse("{" BASE "}", &c, &err), 0);
	assert_string_equal(c->device_id, "Hannover01");
	assert_int_equal(c->max_packet, 256 * 1024);
	assert_int_equal(c->default_ttl_secs, 7200);
	assert_int_equal(c->store_max_bytes, 0);
	assert_int_equal(hub_config_store_bound(c), 0);
	assert_int_equal(c->min_free_percent, 2);
	assert_int_equal(c->store_full, STORE_FULL_REJECT);
	assert_null(c->listen_tcp);
	assert_int_equal(c->n_routes, 0);
	assert_int_equal(c->n_modules, 0);
	hub_config_free(c);
}

static void store_limits_and_policy_are_read(void **state)
{
	struct hub_config *c;
	struct berr err;
	assert_int_equal(parse("{" BASE ",\"store_max_bytes\":1048576,\"store_limits_max_bytes\":"
			       "524288,\"min_free_percent\":5,\"store_full\":\"drop-oldest\"}",
			       &c, &err),
			 0);
	assert_int_equal(hub_config_store_bound(c), 524288);
	assert_int_equal(c->min_free_percent, 5);
	assert_int_equal(c->store_full, STORE_FULL_DROP_OLDEST);
	hub_config_free(c);
	assert_int_equal(parse("{" BASE ",\"store_limits_max_bytes\":524288}", &c, &err), 0);
	assert_int_equal(hub_config_store_bound(c), 524288);
	hub_config_free(c);
	assert_int_equal(parse("{" BASE ",\"store_full\":\"drop-newest\"}", &c, &err), -1);
	assert_non_null(strstr(err.msg, "config.store_full"));
	assert_int_equal(parse("{" BASE ",\"store_max_bytes\":1000}", &c, &err), -1);
	assert_int_equal(parse("{" BASE ",\"min_free_percent\":95}", &c, &err), -1);
}

static void routes_come_as_strings_or_objects(void **state)
{
	struct hub_config *c;
	struct berr err;
	assert_int_equal(
	    parse("{" BASE ",\"routes\":{\"a\":\"FROM /* INTO $upstream\","
		  "\"b\":{\"route\":\"FROM /messages/* INTO $upstream\",\"priority\":3,"
		  "\"timeToLiveSecs\":60}}}",
		  &c, &err),
	    0);
	assert_int_equal(c->n_routes, 2);
	assert_string_equal(c->routes[0].name, "a");
	assert_int_equal(c->routes[0].priority, ROUTE_DEFAULT_PRIORITY);
	assert_int_equal(c->routes[0].ttl_secs, 0);
	assert_int_equal(c->routes[1].priority, 3);
	assert_int_equal(c->routes[1].ttl_secs, 60);
	hub_config_free(c);
}

static void module_keys_are_derived_per_generation(void **state)
{
	struct hub_config *c;
	struct berr err;
	assert_int_equal(parse("{" BASE ",\"modules\":{\"insight\":{\"generation_id\":\"gen1\","
			       "\"desired\":{\"a\":1}},\"other\":{\"generation_id\":\"\","
			       "\"desired\":null}}}",
			       &c, &err),
			 0);
	const struct hub_module *m = hub_config_module(c, "insight");
	assert_non_null(m);
	/* The same value test_sas.c checks against Python's hmac. */
	assert_string_equal(m->key, "m6NQT2ixC3rQIu334NMStJGSZzdOvDFlHrt074RA9gI=");
	assert_non_null(m->desired);
	assert_null(hub_config_module(c, "other")->desired);
	assert_null(hub_config_module(c, "missing"));
	hub_config_free(c);
}

static void unusable_module_names_are_left_out(void **state)
{
	struct hub_config *c;
	struct berr err;
	assert_int_equal(
	    parse("{" BASE ",\"modules\":{\"a/b\":{\"generation_id\":\"g\"},"
		  "\"ok\":{\"generation_id\":\"g\"},\"x#\":{\"generation_id\":\"g\"}}}",
		  &c, &err),
	    0);
	assert_int_equal(c->n_modules, 1);
	assert_string_equal(c->modules[0].name, "ok");
	hub_config_free(c);
}

static void bad_configs_are_refused_with_the_field(void **state)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"[]", "expected a JSON object"},
	    {"{\"device_id\":\"d\"}", "iothub_hostname: required"},
	    {"{" BASE ",\"max_packet\":10}", "max_packet"},
	    {"{" BASE ",\"routes\":{\"r\":{\"route\":\"FROM /* INTO $upstream\",\"priority\":10}}}",
	     "priority"},
	    {"{" BASE ",\"routes\":{\"r\":7}}", "config.routes.r"},
	    {"{" BASE ",\"tls_cert\":\"c.pem\"}", "go together"},
	    {"{" BASE ",\"modules\":{\"m\":{}}}", "generation_id"},
	    {"{\"device_id\":\"a/b\",\"iothub_hostname\":\"h\",\"device_key\":\"AAAA\","
	     "\"state_dir\":\"/s\"}",
	     "device_id"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hub_config *c;
		struct berr err;
		if (parse(bad[i].json, &c, &err) != -1)
			fail_msg("config %s was accepted", bad[i].json);
		if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, "hub.json"))
			fail_msg("config %s: \"%s\" does not say %s", bad[i].json, err.msg,
				 bad[i].msg);
	}
}

static void desired_properties_over_32_kib_are_refused_with_the_module(void **state)
{
	static char json[64 * 1024];
	int n = sprintf(json, "{" BASE ",\"modules\":{\"m\":{\"generation_id\":\"g\","
			      "\"desired\":{\"big\":\"");
	memset(json + n, 'x', 32 * 1024);
	strcpy(json + n + 32 * 1024, "\"}}}}");
	struct hub_config *c;
	struct berr err;
	assert_int_equal(parse(json, &c, &err), -1);
	assert_non_null(strstr(err.msg, "config.modules.m.desired: 32778 bytes is over the limit "
					"of 32768"));
	/* Just under the limit is fine. */
	strcpy(json + n + 32 * 1024 - 12, "\"}}}}");
	assert_int_equal(parse(json, &c, &err), 0);
	hub_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(minimal_config_gets_the_defaults),
	    cmocka_unit_test(store_limits_and_policy_are_read),
	    cmocka_unit_test(routes_come_as_strings_or_objects),
	    cmocka_unit_test(module_keys_are_derived_per_generation),
	    cmocka_unit_test(unusable_module_names_are_left_out),
	    cmocka_unit_test(bad_configs_are_refused_with_the_field),
	    cmocka_unit_test(desired_properties_over_32_kib_are_refused_with_the_module),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
