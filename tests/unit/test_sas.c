/* SAS tokens and module keys, checked against values computed independently
 * (Python's hmac and urllib) from the IoT Hub definition. */
#include "unit.h"

#include <string.h>

#include "common/sas.h"

static const char device_key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static const char resource[] = "myhub.example.net/devices/Hannover01/modules/insight";
static const char known_token[] =
	"SharedAccessSignature sr=myhub.example.net%2Fdevices%2FHannover01%2Fmodules%2Finsight"
	"&sig=qzlELTnXCnWPqBir6Oh%2FfkF%2FoRHutBU8o%2B%2FSfLvg9zk%3D&se=2000000000";

static void token_make_matches_reference(void **state)
{
	char tok[SAS_TOKEN_MAX];
	struct berr err;
	assert_int_equal(sas_token_make(device_key, resource, 2000000000, tok, sizeof(tok), &err), 0);
	assert_string_equal(tok, known_token);
}

static void token_verify_accepts_reference(void **state)
{
	struct berr err;
	assert_int_equal(sas_token_verify(known_token, device_key, resource, 1900000000, &err), 0);
}

static void token_verify_refuses_expired(void **state)
{
	struct berr err;
	assert_int_equal(sas_token_verify(known_token, device_key, resource, 2000000000, &err), -1);
	assert_non_null(strstr(err.msg, "expired"));
}

static void token_verify_refuses_other_resource(void **state)
{
	struct berr err;
	assert_int_equal(sas_token_verify(known_token, device_key,
					  "myhub.example.net/devices/Hannover01/modules/other",
					  1900000000, &err),
			 -1);
	assert_non_null(strstr(err.msg, "not myhub"));
}

static void token_verify_refuses_wrong_key(void **state)
{
	struct berr err;
	assert_int_equal(sas_token_verify(known_token, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
					  resource, 1900000000, &err),
			 -1);
	assert_non_null(strstr(err.msg, "signature"));
}

static void token_verify_compares_hostname_without_case(void **state)
{
	struct berr err;
	assert_int_equal(sas_token_verify(known_token, device_key,
					  "MyHub.Example.NET/devices/Hannover01/modules/insight",
					  1900000000, &err),
			 0);
}

static void token_verify_refuses_garbage(void **state)
{
	static const char *bad[] = {
		"",
		"Bearer x",
		"SharedAccessSignature ",
		"SharedAccessSignature sr=a&sig=b",
		"SharedAccessSignature sr=a&sig=b&se=notanumber",
		"SharedAccessSignature sr=a&sig=b&se=1&se=2",
		"SharedAccessSignature sr=%zz&sig=b&se=9999999999",
		"SharedAccessSignature sr=a&sig=b&se=9999999999&foo=bar",
	};
	struct berr err;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sas_token_verify(bad[i], device_key, resource, 1, &err), -1);
	assert_int_equal(sas_token_verify(known_token, device_key, resource, 1, &err), 0);
}

static void token_verify_refuses_overlong_token(void **state)
{
	char tok[SAS_TOKEN_MAX + 64];
	memset(tok, 'a', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	memcpy(tok, "SharedAccessSignature ", 22);
	struct berr err;
	assert_int_equal(sas_token_verify(tok, device_key, resource, 1, &err), -1);
	assert_non_null(strstr(err.msg, "longer"));
}

static void module_key_derivation_matches_reference(void **state)
{
	char key[SAS_KEY_B64_MAX];
	struct berr err;
	assert_int_equal(sas_derive_module_key(device_key, "insight", "gen1", key, &err), 0);
	assert_string_equal(key, "m6NQT2ixC3rQIu334NMStJGSZzdOvDFlHrt074RA9gI=");
}

static void module_key_changes_with_generation(void **state)
{
	char a[SAS_KEY_B64_MAX], b[SAS_KEY_B64_MAX];
	struct berr err;
	assert_int_equal(sas_derive_module_key(device_key, "insight", "gen1", a, &err), 0);
	assert_int_equal(sas_derive_module_key(device_key, "insight", "gen2", b, &err), 0);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_make_matches_reference),
		cmocka_unit_test(token_verify_accepts_reference),
		cmocka_unit_test(token_verify_refuses_expired),
		cmocka_unit_test(token_verify_refuses_other_resource),
		cmocka_unit_test(token_verify_refuses_wrong_key),
		cmocka_unit_test(token_verify_compares_hostname_without_case),
		cmocka_unit_test(token_verify_refuses_garbage),
		cmocka_unit_test(token_verify_refuses_overlong_token),
		cmocka_unit_test(module_key_derivation_matches_reference),
		cmocka_unit_test(module_key_changes_with_generation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
