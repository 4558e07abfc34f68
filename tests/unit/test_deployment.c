/* Deployment manifests: both accepted forms, defaults, and each refusal
 * naming the JSON path of what is wrong. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/deployment.h"
#include "hub/route.h"

#define AGENT_PATH "$.modulesContent.$edgeAgent['properties.desired']"

/* A manifest with the given modules object and $edgeHub routes object. */
static char *manifest(const char *modules, const char *routes)
{
	char *s = NULL;
	if (asprintf(
		&s,
		"{\"modulesContent\":{\"$edgeAgent\":{\"properties.desired\":{"
		"\"schemaVersion\":\"1.1\",\"runtime\":{\"type\":\"docker\",\"settings\":{}},"
		"\"systemModules\":{\"edgeAgent\":{},\"edgeHub\":{}},\"modules\":%s}},"
		"\"$edgeHub\":{\"properties.desired\":{\"schemaVersion\":\"1.1\",\"routes\":%s,"
		"\"storeAndForwardConfiguration\":{\"timeToLiveSecs\":60}}}}}",
		modules, routes) < 0)
		abort();
	return s;
}

static struct deployment *parse_ok(const char *text, bool privileged)
{
	struct deployment *d = NULL;
	struct berr err = {0};
	struct deployment_policy pol = {.allow_privileged = privileged};
	if (deployment_parse(text, strlen(text), "deployment t", &pol, &d, &err) < 0)
		fail_msg("unexpected error: %s", err.msg);
	return d;
}

static void expect_error(const char *text, const char *needle)
{
	struct deployment *d = NULL;
	struct berr err = {0};
	struct deployment_policy pol = {0};
	assert_int_equal(deployment_parse(text, strlen(text), "deployment t", &pol, &d, &err), -1);
	assert_null(d);
	if (!strstr(err.msg, needle))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, needle);
}

static void expect_module_error(const char *modules, const char *needle)
{
	char *m = manifest(modules, "{}");
	expect_error(m, needle);
	free(m);
}

#define WEB(extra)                                                                                 \
	"{\"web\":{\"type\":\"docker\",\"settings\":{\"image\":\"r:5000/web:1\"" extra "}}}"

static void module_defaults_follow_edge_agent(void **state)
{
	char *m = manifest(WEB(""), "{}");
	struct deployment *d = parse_ok(m, false);
	assert_int_equal(d->n_modules, 1);
	const struct deployment_module *w = deployment_module(d, "web");
	assert_non_null(w);
	assert_string_equal(w->image, "r:5000/web:1");
	assert_true(w->run);
	assert_int_equal(w->restart, RESTART_ALWAYS);
	assert_int_equal(w->pull, PULL_ON_CREATE);
	assert_int_equal(w->startup_order, STARTUP_ORDER_DEFAULT);
	assert_null(w->create_options_text);
	assert_int_equal(d->ttl_secs, 60);
	deployment_free(d);
	free(m);
}

static void content_wrapper_form_is_accepted(void **state)
{
	const char *text =
	    "{\"content\":{\"modulesContent\":{\"$edgeAgent\":{\"properties.desired\":{"
	    "\"modules\":" WEB("") "}}}}}";
	struct deployment *d = parse_ok(text, false);
	assert_int_equal(d->n_modules, 1);
	assert_int_equal(d->ttl_secs, 7200);
	deployment_free(d);
}

static void module_fields_are_read(void **state)
{
	char *m = manifest("{\"web\":{\"status\":\"stopped\",\"restartPolicy\":\"on-failure\","
			   "\"imagePullPolicy\":\"never\",\"startupOrder\":2,\"version\":\"1.0\","
			   "\"settings\":{\"image\":\"web:1\"},"
			   "\"env\":{\"A\":{\"value\":\"x\"},\"N\":{\"value\":5}}}}",
			   "{}");
	struct deployment *d = parse_ok(m, false);
	const struct deployment_module *w = deployment_module(d, "web");
	assert_false(w->run);
	assert_int_equal(w->restart, RESTART_ON_FAILURE);
	assert_int_equal(w->pull, PULL_NEVER);
	assert_int_equal(w->startup_order, 2);
	assert_int_equal(w->n_env, 2);
	assert_string_equal(w->env[0].key, "A");
	assert_string_equal(w->env[0].value, "x");
	assert_string_equal(w->env[1].value, "5");
	deployment_free(d);
	free(m);
}

static void modules_are_ordered_by_startup_order_then_name(void **state)
{
	char *m = manifest("{\"c\":{\"settings\":{\"image\":\"i\"}},"
			   "\"b\":{\"startupOrder\":1,\"settings\":{\"image\":\"i\"}},"
			   "\"a\":{\"startupOrder\":1,\"settings\":{\"image\":\"i\"}},"
			   "\"z\":{\"startupOrder\":0,\"settings\":{\"image\":\"i\"}}}",
			   "{}");
	struct deployment *d = parse_ok(m, false);
	assert_string_equal(d->modules[0].name, "z");
	assert_string_equal(d->modules[1].name, "a");
	assert_string_equal(d->modules[2].name, "b");
	assert_string_equal(d->modules[3].name, "c");
	deployment_free(d);
	free(m);
}

static void missing_image_names_its_path(void **state)
{
	expect_module_error("{\"web\":{\"settings\":{}}}",
			    "deployment t: " AGENT_PATH
			    ".modules.web.settings.image: required but missing");
}

static void missing_settings_names_its_path(void **state)
{
	expect_module_error("{\"web\":{}}",
			    AGENT_PATH ".modules.web.settings: required but missing");
}

static void missing_edge_agent_is_refused(void **state)
{
	expect_error("{\"modulesContent\":{}}",
		     "$.modulesContent.$edgeAgent: required but missing");
}

static void missing_modules_content_is_refused(void **state)
{
	expect_error("{\"modules\":{}}", "$.modulesContent: required but missing");
}

static void malformed_json_is_refused(void **state)
{
	expect_error("{\"modulesContent\":", "deployment t: malformed JSON");
}

static void bad_module_name_is_refused(void **state)
{
	expect_module_error("{\"../etc\":{\"settings\":{\"image\":\"i\"}}}",
			    AGENT_PATH ".modules['../etc']: module names are");
	expect_module_error("{\"-x\":{\"settings\":{\"image\":\"i\"}}}", "module names are");
	expect_module_error(
	    "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":"
	    "{\"settings\":{\"image\":\"i\"}}}",
	    "module names are");
}

static void bad_status_is_refused(void **state)
{
	expect_module_error("{\"web\":{\"status\":\"paused\",\"settings\":{\"image\":\"i\"}}}",
			    AGENT_PATH
			    ".modules.web.status: \"paused\" is not one of running, stopped");
}

static void bad_restart_policy_is_refused(void **state)
{
	expect_module_error(
	    "{\"web\":{\"restartPolicy\":\"sometimes\",\"settings\":{\"image\":\"i\"}}}",
	    ".modules.web.restartPolicy: \"sometimes\" is not one of");
}

static void bad_pull_policy_is_refused(void **state)
{
	expect_module_error(
	    "{\"web\":{\"imagePullPolicy\":\"always\",\"settings\":{\"image\":\"i\"}}}",
	    ".modules.web.imagePullPolicy: \"always\" is not one of on-create, never");
}

static void negative_startup_order_is_refused(void **state)
{
	expect_module_error("{\"web\":{\"startupOrder\":-1,\"settings\":{\"image\":\"i\"}}}",
			    ".modules.web.startupOrder: -1 is outside");
}

static void image_with_space_is_refused(void **state)
{
	expect_module_error("{\"web\":{\"settings\":{\"image\":\"a b\"}}}",
			    ".modules.web.settings.image: not an image reference");
}

static void env_without_value_is_refused(void **state)
{
	expect_module_error("{\"web\":{\"settings\":{\"image\":\"i\"},\"env\":{\"A\":{}}}}",
			    ".modules.web.env.A.value: required but missing");
	expect_module_error("{\"web\":{\"settings\":{\"image\":\"i\"},\"env\":{\"A\":\"x\"}}}",
			    ".modules.web.env.A: expected {\"value\": ...}");
}

static void bad_create_options_json_is_refused(void **state)
{
	expect_module_error(WEB(",\"createOptions\":\"{not json\""),
			    ".modules.web.settings.createOptions: malformed JSON");
}

static void create_options_must_be_a_string(void **state)
{
	expect_module_error(WEB(",\"createOptions\":{\"Env\":[]}"),
			    ".modules.web.settings.createOptions: expected a string");
}

static void bad_create_options_value_names_inner_path(void **state)
{
	expect_module_error(
	    WEB(",\"createOptions\":\"{\\\"HostConfig\\\":{\\\"Memory\\\":\\\"lots\\\"}}\""),
	    ".modules.web.settings.createOptions: $.HostConfig.Memory: expected an integer");
}

static void chunked_create_options_are_joined_in_order(void **state)
{
	char *m = manifest(WEB(",\"createOptions02\":\"\\\"X=1\\\"]}\","
			       "\"createOptions01\":\"{\\\"Env\\\":[\""),
			   "{}");
	struct deployment *d = parse_ok(m, false);
	const struct deployment_module *w = deployment_module(d, "web");
	assert_string_equal(w->create_options_text, "{\"Env\":[\"X=1\"]}");
	assert_string_equal(w->create.env[0], "X=1");
	deployment_free(d);
	free(m);
}

static void chunks_follow_the_unnumbered_first_part(void **state)
{
	char *m = manifest(
	    WEB(",\"createOptions\":\"{\\\"Cmd\\\":\",\"createOptions01\":\"[\\\"a\\\"]}\""), "{}");
	struct deployment *d = parse_ok(m, false);
	assert_string_equal(deployment_module(d, "web")->create.cmd[0], "a");
	deployment_free(d);
	free(m);
}

static void missing_chunk_is_refused(void **state)
{
	expect_module_error(WEB(",\"createOptions01\":\"{\",\"createOptions03\":\"}\""),
			    ".modules.web.settings.createOptions02: required but missing");
}

static void privileged_is_refused_unless_allowed(void **state)
{
	char *m = manifest(
	    WEB(",\"createOptions\":\"{\\\"HostConfig\\\":{\\\"Privileged\\\":true}}\""), "{}");
	expect_error(m, "HostConfig.Privileged is refused");
	struct deployment *d = parse_ok(m, true);
	assert_true(deployment_module(d, "web")->create.privileged);
	deployment_free(d);
	free(m);
}

static void config_hash_changes_with_env_only_for_that_module(void **state)
{
	char *m1 =
	    manifest("{\"a\":{\"settings\":{\"image\":\"i\"},\"env\":{\"K\":{\"value\":\"1\"}}},"
		     "\"b\":{\"settings\":{\"image\":\"i\"}}}",
		     "{}");
	char *m2 =
	    manifest("{\"a\":{\"settings\":{\"image\":\"i\"},\"env\":{\"K\":{\"value\":\"2\"}}},"
		     "\"b\":{\"settings\":{\"image\":\"i\"}}}",
		     "{}");
	struct deployment *d1 = parse_ok(m1, false), *d2 = parse_ok(m2, false);
	assert_string_not_equal(deployment_module(d1, "a")->config_hash,
				deployment_module(d2, "a")->config_hash);
	assert_string_equal(deployment_module(d1, "b")->config_hash,
			    deployment_module(d2, "b")->config_hash);
	deployment_free(d1);
	deployment_free(d2);
	free(m1);
	free(m2);
}

static void routes_in_both_forms_are_read(void **state)
{
	char *m =
	    manifest("{}", "{\"r1\":\"FROM /* INTO $upstream\","
			   "\"r2\":{\"route\":\"FROM /messages/* INTO $upstream\",\"priority\":1,"
			   "\"timeToLiveSecs\":30}}");
	struct deployment *d = parse_ok(m, false);
	assert_int_equal(d->n_routes, 2);
	assert_string_equal(d->routes[0].name, "r1");
	assert_int_equal(d->routes[0].priority, ROUTE_DEFAULT_PRIORITY);
	assert_int_equal(d->routes[1].priority, 1);
	assert_int_equal(d->routes[1].ttl_secs, 30);
	deployment_free(d);
	free(m);
}

static void bad_route_names_the_route_and_position(void **state)
{
	char *m =
	    manifest("{}", "{\"r1\":\"FROM /* INTO $upstream\",\"bad\":\"FRM /* INTO $upstream\"}");
	expect_error(m, "$.modulesContent.$edgeHub['properties.desired'].routes: ");
	expect_error(m, "bad");
	expect_error(m, "position");
	free(m);
}

static void route_priority_out_of_range_is_refused(void **state)
{
	char *m = manifest("{}", "{\"r\":{\"route\":\"FROM /* INTO $upstream\",\"priority\":10}}");
	expect_error(m, ".routes.r.priority: 10 is outside 0..9");
	free(m);
}

static void module_twin_is_kept_for_deployed_modules(void **state)
{
	const char *text =
	    "{\"modulesContent\":{\"$edgeAgent\":{\"properties.desired\":{\"modules\":" WEB(
		"") "}},"
		    "\"web\":{\"properties.desired\":{\"interval\":5}},"
		    "\"other\":{\"properties.desired\":{\"x\":1}}}}";
	struct deployment *d = parse_ok(text, false);
	assert_string_equal(deployment_module(d, "web")->desired_twin, "{\"interval\":5}");
	deployment_free(d);
}

static void module_twin_over_32_kib_is_refused(void **state)
{
	char *big = malloc(40 * 1024);
	memset(big, 'x', 40 * 1024 - 1);
	big[40 * 1024 - 1] = '\0';
	char *text = NULL;
	if (asprintf(&text,
		     "{\"modulesContent\":{\"$edgeAgent\":{\"properties.desired\":{\"modules\":" WEB(
			 "") "}},\"web\":{\"properties.desired\":{\"blob\":\"%s\"}}}}",
		     big) < 0)
		abort();
	expect_error(text, "$.modulesContent.web['properties.desired']: larger than 32768 bytes");
	free(text);
	free(big);
}

static void registry_credentials_are_read(void **state)
{
	const char *text =
	    "{\"modulesContent\":{\"$edgeAgent\":{\"properties.desired\":{\"runtime\":{"
	    "\"settings\":"
	    "{\"registryCredentials\":{\"acr\":{\"address\":\"acr.io\",\"username\":\"u\","
	    "\"password\":\"p\"}}}},\"modules\":{}}}}}";
	struct deployment *d = parse_ok(text, false);
	assert_int_equal(d->n_registries, 1);
	assert_string_equal(d->registries[0].host, "acr.io");
	deployment_free(d);
}

static void oversized_document_is_refused(void **state)
{
	size_t n = DEPLOYMENT_MAX_BYTES + 10;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	expect_error(big, "over the limit");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(module_defaults_follow_edge_agent),
	    cmocka_unit_test(content_wrapper_form_is_accepted),
	    cmocka_unit_test(module_fields_are_read),
	    cmocka_unit_test(modules_are_ordered_by_startup_order_then_name),
	    cmocka_unit_test(missing_image_names_its_path),
	    cmocka_unit_test(missing_settings_names_its_path),
	    cmocka_unit_test(missing_edge_agent_is_refused),
	    cmocka_unit_test(missing_modules_content_is_refused),
	    cmocka_unit_test(malformed_json_is_refused),
	    cmocka_unit_test(bad_module_name_is_refused),
	    cmocka_unit_test(bad_status_is_refused),
	    cmocka_unit_test(bad_restart_policy_is_refused),
	    cmocka_unit_test(bad_pull_policy_is_refused),
	    cmocka_unit_test(negative_startup_order_is_refused),
	    cmocka_unit_test(image_with_space_is_refused),
	    cmocka_unit_test(env_without_value_is_refused),
	    cmocka_unit_test(bad_create_options_json_is_refused),
	    cmocka_unit_test(create_options_must_be_a_string),
	    cmocka_unit_test(bad_create_options_value_names_inner_path),
	    cmocka_unit_test(chunked_create_options_are_joined_in_order),
	    cmocka_unit_test(chunks_follow_the_unnumbered_first_part),
	    cmocka_unit_test(missing_chunk_is_refused),
	    cmocka_unit_test(privileged_is_refused_unless_allowed),
	    cmocka_unit_test(config_hash_changes_with_env_only_for_that_module),
	    cmocka_unit_test(routes_in_both_forms_are_read),
	    cmocka_unit_test(bad_route_names_the_route_and_position),
	    cmocka_unit_test(route_priority_out_of_range_is_refused),
	    cmocka_unit_test(module_twin_is_kept_for_deployed_modules),
	    cmocka_unit_test(module_twin_over_32_kib_is_refused),
	    cmocka_unit_test(registry_credentials_are_read),
	    cmocka_unit_test(oversized_document_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
