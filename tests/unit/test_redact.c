/* What the support bundle takes out of a config, a deployment and logs. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "agent/redact.h"

static char *redacted(const char *json, struct redact_secrets *s)
{
	struct strbuf out = STRBUF_INIT;
	struct berr err;
	assert_int_equal(redact_json(json, strlen(json), "test", s, &out, &err), 0);
	return strbuf_detach(&out);
}

static char *scrubbed(const char *text, const struct redact_secrets *s)
{
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(redact_text(text, strlen(text), s, &out), 0);
	return out.buf ? strbuf_detach(&out) : strdup("");
}

static void keys_that_name_secrets_are_redacted_and_the_rest_kept(void **state)
{
	struct redact_secrets s = {0};
	char *out = redacted("{\"device_id\":\"Hannover01\",\"device_key\":\"S2V5S2V5\","
			     "\"registries\":{\"r\":{\"username\":\"u\",\"password\":\"pw-123\"}},"
			     "\"hub\":{\"max_store_bytes\":100,\"AuthToken\":\"tok-abc\"}}",
			     &s);
	assert_null(strstr(out, "S2V5S2V5"));
	assert_null(strstr(out, "pw-123"));
	assert_null(strstr(out, "tok-abc"));
	assert_non_null(strstr(out, "Hannover01"));
	assert_non_null(strstr(out, "\"username\": \"u\""));
	assert_non_null(strstr(out, "100"));
	assert_int_equal(s.n, 3);
	free(out);
	redact_secrets_free(&s);
}

static void a_secret_name_covers_its_value_and_an_env_value_under_it(void **state)
{
	struct redact_secrets s = {0};
	char *out = redacted("{\"env\":{\"API_KEY\":{\"value\":\"v-secret\"},"
			     "\"MODE\":{\"value\":\"fast\"}},"
			     "\"registryCredentials\":{\"acr\":{\"address\":\"acr.example.io\","
			     "\"password\":\"p-secret\"}}}",
			     &s);
	assert_null(strstr(out, "v-secret"));
	assert_non_null(strstr(out, "acr.example.io"));
	assert_null(strstr(out, "p-secret"));
	assert_non_null(strstr(out, "fast"));
	free(out);
	redact_secrets_free(&s);
}

static void connection_strings_go_whatever_their_key(void **state)
{
	struct redact_secrets s = {0};
	char *out = redacted("{\"x\":\"HostName=h;DeviceId=d;SharedAccessKey=a2V5\"}", &s);
	assert_null(strstr(out, "a2V5"));
	assert_non_null(strstr(out, REDACTED));
	free(out);
	redact_secrets_free(&s);
}

static void secret_env_of_create_options_is_scrubbed_from_logs(void **state)
{
	struct redact_secrets s = {0};
	char *out = redacted("{\"createOptions\":\"{\\\"Env\\\":[\\\"DB_PASSWORD=db-pw-1\\\","
			     "\\\"LEVEL=debug\\\"]}\"}",
			     &s);
	free(out);
	char *log = scrubbed("connecting with db-pw-1 at LEVEL=debug\n", &s);
	assert_string_equal(log, "connecting with " REDACTED " at LEVEL=debug\n");
	free(log);
	redact_secrets_free(&s);
}

static void logs_lose_secrets_in_plain_and_url_encoded_form(void **state)
{
	struct redact_secrets s = {0};
	free(redacted("{\"device_key\":\"ab+c/d==\"}", &s));
	char *log = scrubbed("key ab+c/d== or ab%2Bc%2Fd%3D%3D, and abc stays", &s);
	assert_string_equal(log, "key " REDACTED " or " REDACTED ", and abc stays");
	free(log);
	redact_secrets_free(&s);
}

static void sas_signatures_and_shared_access_keys_go_from_any_text(void **state)
{
	struct redact_secrets s = {0};
	char *log = scrubbed("SharedAccessSignature sr=h%2Fdevices%2Fd&sig=AbC%2Bd%3D&se=17 "
			     "HostName=h;SharedAccessKey=Zm9v;x",
			     &s);
	assert_string_equal(log, "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=" REDACTED
				 "&se=17 HostName=h;SharedAccessKey=" REDACTED ";x");
	free(log);
	/* The positive control: text without them is copied as it is. */
	log = scrubbed("nothing to see", &s);
	assert_string_equal(log, "nothing to see");
	free(log);
}

static void short_values_are_not_scrubbed_from_everything(void **state)
{
	struct redact_secrets s = {0};
	char *out = redacted("{\"password\":\"ab\"}", &s);
	assert_null(strstr(out, "\"ab\""));
	free(out);
	char *log = scrubbed("about abc", &s);
	assert_string_equal(log, "about abc");
	free(log);
	redact_secrets_free(&s);
}

static void no_json_is_an_error(void **state)
{
	struct redact_secrets s = {0};
	struct strbuf out = STRBUF_INIT;
	struct berr err;
	assert_int_equal(redact_json("{\"password\": ", 13, "config.json", &s, &out, &err), -1);
	assert_non_null(strstr(err.msg, "config.json"));
	strbuf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keys_that_name_secrets_are_redacted_and_the_rest_kept),
	    cmocka_unit_test(a_secret_name_covers_its_value_and_an_env_value_under_it),
	    cmocka_unit_test(connection_strings_go_whatever_their_key),
	    cmocka_unit_test(secret_env_of_create_options_is_scrubbed_from_logs),
	    cmocka_unit_test(logs_lose_secrets_in_plain_and_url_encoded_form),
	    cmocka_unit_test(sas_signatures_and_shared_access_keys_go_from_any_text),
	    cmocka_unit_test(short_values_are_not_scrubbed_from_everything),
	    cmocka_unit_test(no_json_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
