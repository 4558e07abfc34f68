/* The built-in SHA-256 against the FIPS 180-4 examples and libcrypto. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/sha256.h"

static void hex(const uint8_t md[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void known_vectors_hash_correctly(void **state)
{
	const char *vec[][2] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		struct sha256 s;
		uint8_t md[32];
		char h[65];
		sha256_init(&s);
		sha256_update(&s, vec[i][0], strlen(vec[i][0]));
		sha256_final(&s, md);
		hex(md, h);
		assert_string_equal(h, vec[i][1]);
	}
}

static void a_million_a_in_pieces(void **state)
{
	struct sha256 s;
	uint8_t md[32];
	char h[65];
	char chunk[1001];
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&s);
	for (int i = 0; i < 1000; i++)
		sha256_update(&s, chunk, (size_t)(i % 2 ? 999 : 1001));
	sha256_final(&s, md);
	hex(md, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void agrees_with_libcrypto_at_every_length(void **state)
{
	uint8_t buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		char mine[DIGEST_STR_MAX], theirs[DIGEST_STR_MAX];
		digest_sha256(buf, n, mine);
		struct digester *d = digester_new("sha256");
		digester_update(d, buf, n);
		digester_final(d, theirs);
		digester_free(d);
		assert_string_equal(mine, theirs);
	}
}

static void verify_reports_a_mismatch(void **state)
{
	struct berr err;
	assert_int_equal(
	    digest_verify("abc", 3,
			  "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
			  "x", &err),
	    0);
	assert_int_equal(
	    digest_verify("abd", 3,
			  "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
			  "x", &err),
	    -1);
	assert_non_null(strstr(err.msg, "digest mismatch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(known_vectors_hash_correctly),
	    cmocka_unit_test(a_million_a_in_pieces),
	    cmocka_unit_test(agrees_with_libcrypto_at_every_length),
	    cmocka_unit_test(verify_reports_a_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
