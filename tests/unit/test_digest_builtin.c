/* digest_sha256() and digest_verify() hash in-memory documents with the
 * built-in SHA-256 (common/sha256.h): the same answers as libcrypto. */
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
	    cmocka_unit_test(a_million_a_in_pieces),
	    cmocka_unit_test(agrees_with_libcrypto_at_every_length),
	    cmocka_unit_test(verify_reports_a_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
