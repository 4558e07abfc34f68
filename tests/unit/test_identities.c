/* Module identities in IoT Hub: the keys berth derives (checked against an
 * independent HMAC computation), reading IoT Hub's module JSON as outside
 * input, the PUT body, error text, and the lines `berth list` prints. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/identities.h"
#include "agent/upstream_view.h"
#include "common/json.h"

#define KEY	  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PRIMARY	  "VT63U8seDIDSMOCfg00amXUmtQaCDZYSQEQc7xVIAlI="
#define SECONDARY "LU92oBS9W2rLt9djRcj2pUfvIU2VBKQfNhQ8nw2hAhQ="

static void keys_are_derived_from_the_device_key_and_generation(void **state)
{
	char p[SAS_KEY_B64_MAX], s[SAS_KEY_B64_MAX];
	struct berr err;
	assert_int_equal(identity_keys(KEY, "sensor", "gen1", p, s, &err), 0);
	assert_string_equal(p, PRIMARY);
	assert_string_equal(s, SECONDARY);
	/* The primary key is the one the hub signs the module's tokens with. */
	char hub_key[SAS_KEY_B64_MAX];
	assert_int_equal(sas_derive_module_key(KEY, "sensor", "gen1", hub_key, &err), 0);
	assert_string_equal(hub_key, PRIMARY);
	assert_int_equal(identity_keys(KEY, "$edgeAgent", IDENTITY_SYSTEM_GENERATION, p, s, &err),
			 0);
	assert_string_equal(p, "AzzXbv7Kg6zIvW3er/C5rqzVb06XQlbymt1gWRpkfdU=");
	assert_int_equal(identity_keys(KEY, "sensor", "gen2", p, s, &err), 0);
	assert_string_not_equal(p, PRIMARY);
}

static int parse(const char *body, struct identity_seen *seen)
{
	struct berr err;
	return identity_parse(body, strlen(body), PRIMARY, SECONDARY, seen, &err);
}

static void a_module_with_our_keys_needs_nothing(void **state)
{
	struct identity_seen seen;
	assert_int_equal(parse("{\"deviceId\":\"d\",\"moduleId\":\"sensor\",\"etag\":\"MQ==\","
			       "\"managedBy\":\"IotEdge\",\"authentication\":{\"type\":\"sas\","
			       "\"symmetricKey\":{\"primaryKey\":\"" PRIMARY "\","
			       "\"secondaryKey\":\"" SECONDARY "\"}}}",
			       &seen),
			 0);
	assert_true(seen.keys_match);
	assert_string_equal(seen.etag, "MQ==");
	assert_string_equal(seen.managed_by, "IotEdge");
}

static void other_keys_or_types_need_an_update(void **state)
{
	struct identity_seen seen;
	assert_int_equal(parse("{\"etag\":\"e1\",\"authentication\":{\"type\":\"sas\","
			       "\"symmetricKey\":{\"primaryKey\":\"" SECONDARY "\","
			       "\"secondaryKey\":\"" PRIMARY "\"}}}",
			       &seen),
			 0);
	assert_false(seen.keys_match);
	assert_int_equal(parse("{\"etag\":\"e1\",\"authentication\":{\"type\":\"selfSigned\","
			       "\"symmetricKey\":{\"primaryKey\":\"" PRIMARY "\","
			       "\"secondaryKey\":\"" SECONDARY "\"}}}",
			       &seen),
			 0);
	assert_false(seen.keys_match);
	assert_int_equal(parse("{\"etag\":\"e1\",\"authentication\":{\"type\":\"none\"}}", &seen),
			 0);
	assert_false(seen.keys_match);
	assert_string_equal(seen.etag, "e1");
}

static void hostile_module_json_is_refused(void **state)
{
	struct identity_seen seen;
	struct berr err;
	assert_int_equal(parse("[1,2]", &seen), -1);
	assert_int_equal(parse("{\"authentication\":{}}", &seen), -1);	      /* no etag */
	assert_int_equal(parse("{\"etag\":\"\\r\\nX-Evil: 1\"}", &seen), -1); /* header */
	assert_int_equal(parse("{\"etag\":\"\\\"\\\"\"}", &seen), -1);	      /* quotes only */
	assert_int_equal(parse("{\"etag\":1}", &seen), -1);
	assert_int_equal(parse("{\"etag\":\"e\"", &seen), -1);
	char big[IDENTITY_ETAG_MAX + 32];
	snprintf(big, sizeof(big), "{\"etag\":\"%0*d\"}", IDENTITY_ETAG_MAX + 1, 0);
	assert_int_equal(parse(big, &seen), -1);
	/* The control: an etag at the limit, in a body of the same form, is taken. */
	snprintf(big, sizeof(big), "{\"etag\":\"%0*d\"}", IDENTITY_ETAG_MAX, 0);
	assert_int_equal(parse(big, &seen), 0);
	assert_int_equal(strlen(seen.etag), IDENTITY_ETAG_MAX);
	size_t n = IDENTITY_BODY_MAX + 10;
	char *huge = malloc(n + 1);
	memset(huge, ' ', n);
	huge[0] = '{';
	memcpy(huge + n - 12, "\"etag\":\"e\"}", 12);
	huge[n] = '\0';
	assert_int_equal(identity_parse(huge, n, PRIMARY, SECONDARY, &seen, &err), -1);
	free(huge);
}

static void the_put_body_names_the_identity_and_its_keys(void **state)
{
	char *body = identity_body("Hannover01", "$edgeHub", PRIMARY, SECONDARY);
	assert_string_equal(body,
			    "{\"deviceId\":\"Hannover01\",\"moduleId\":\"$edgeHub\",\"managedBy\":"
			    "\"IotEdge\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{"
			    "\"primaryKey\":\"" PRIMARY "\",\"secondaryKey\":\"" SECONDARY "\"}}}");
	free(body);
}

static void iothub_errors_become_one_line(void **state)
{
	char out[200];
	const char *body = "{\"Message\":\"ErrorCode:ModuleAlreadyExistsOnDevice;A module "
			   "exists\\nalready\",\"ExceptionMessage\":\"Tracking ID:1\"}";
	identity_error_text(body, strlen(body), out, sizeof(out));
	assert_string_equal(out, "ErrorCode:ModuleAlreadyExistsOnDevice;A module exists already");
	identity_error_text("<html>", 6, out, sizeof(out));
	assert_string_equal(out, "");
	identity_error_text("", 0, out, sizeof(out));
	assert_string_equal(out, "");
}

static yajl_val json(const char *text)
{
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse(text, strlen(text), 1 << 20, "t", &v, &err), 0);
	return v;
}

static void list_lines_say_connected_or_since_when_not(void **state)
{
	char line[600];
	int64_t now = 1700000000000LL;
	yajl_val up = json("{\"url\":\"mqtts://h:8883\",\"state\":\"connected\",\"connections\":2,"
			   "\"connected\":2,\"connected_since_ms\":1699999820000,\"backlog\":0}");
	assert_true(upstream_describe(up, now, line, sizeof(line)));
	assert_string_equal(line, "upstream mqtts://h:8883: connected since "
				  "2023-11-14T22:10:20.000Z (3 minutes), 2 identities; "
				  "no message waiting");
	yajl_tree_free(up);
	up = json("{\"url\":\"mqtts://h:8883\",\"state\":\"disconnected\",\"connections\":1,"
		  "\"connected\":0,\"disconnected_since_ms\":1699992800000,\"last_error\":"
		  "\"connection refused\",\"backlog\":10000,\"oldest_ms\":1699996400000}");
	assert_false(upstream_describe(up, now, line, sizeof(line)));
	assert_string_equal(line, "upstream mqtts://h:8883: not connected since "
				  "2023-11-14T20:13:20.000Z (2 hours): connection refused; "
				  "10000 messages waiting, the oldest 1 hour old");
	yajl_tree_free(up);
	up = json("{\"url\":\"mqtt://h\",\"state\":\"idle\"}");
	assert_true(upstream_describe(up, now, line, sizeof(line)));
	assert_string_equal(line, "upstream mqtt://h: idle (no identity has anything to send)");
	yajl_tree_free(up);
	up = json("{\"identities\":\"iothub\",\"identities_wanted\":4,\"identities_ready\":3,"
		  "\"identities_error\":\"PUT of identity a answered 401\"}");
	assert_false(upstream_identities_describe(up, line, sizeof(line)));
	assert_string_equal(line, "module identities in IoT Hub: 3 of 4 ready; last error: PUT of "
				  "identity a answered 401");
	yajl_tree_free(up);
	up = json("{\"identities\":\"none\"}");
	assert_true(upstream_identities_describe(up, line, sizeof(line)));
	yajl_tree_free(up);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keys_are_derived_from_the_device_key_and_generation),
	    cmocka_unit_test(a_module_with_our_keys_needs_nothing),
	    cmocka_unit_test(other_keys_or_types_need_an_update),
	    cmocka_unit_test(hostile_module_json_is_refused),
	    cmocka_unit_test(the_put_body_names_the_identity_and_its_keys),
	    cmocka_unit_test(iothub_errors_become_one_line),
	    cmocka_unit_test(list_lines_say_connected_or_since_when_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
