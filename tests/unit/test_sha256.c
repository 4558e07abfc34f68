/* SHA-256 and HMAC-SHA256 against the FIPS 180-4 examples and RFC 4231. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "common/sha256.h"

static void hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < SHA256_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest_of(const void *data, size_t len, char out[65])
{
	struct sha256 s;
	unsigned char d[SHA256_LEN];
	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, d);
	hex(d, out);
}

static void sha256_of_empty_input(void **state)
{
	char h[65];
	digest_of("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void sha256_of_abc(void **state)
{
	char h[65];
	digest_of("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void sha256_of_two_block_message(void **state)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char h[65];
	digest_of(m, strlen(m), h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void sha256_of_a_million_a_fed_in_odd_pieces(void **state)
{
	static char buf[1000];
	memset(buf, 'a', sizeof(buf));
	struct sha256 s;
	sha256_init(&s);
	size_t left = 1000000, piece = 1;
	while (left) {
		size_t n = piece < left ? piece : left;
		if (n > sizeof(buf))
			n = sizeof(buf);
		sha256_update(&s, buf, n);
		left -= n;
		piece = piece * 7 % 997 + 1;
	}
	unsigned char d[SHA256_LEN];
	char h[65];
	sha256_final(&s, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void hmac_rfc4231_case_2(void **state)
{
	unsigned char d[SHA256_LEN];
	char h[65];
	const char *msg = "what do ya want for nothing?";
	hmac_sha256("Jefe", 4, msg, strlen(msg), d);
	hex(d, h);
	assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void hmac_rfc4231_case_6_long_key(void **state)
{
	unsigned char key[131];
	memset(key, 0xaa, sizeof(key));
	const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
	unsigned char d[SHA256_LEN];
	char h[65];
	hmac_sha256(key, sizeof(key), msg, strlen(msg), d);
	hex(d, h);
	assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void constant_time_compare_finds_any_difference(void **state)
{
	assert_int_equal(memcmp_constant_time("abcd", "abcd", 4), 0);
	assert_int_not_equal(memcmp_constant_time("abcd", "abce", 4), 0);
	assert_int_not_equal(memcmp_constant_time("xbcd", "abcd", 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sha256_of_empty_input),
		cmocka_unit_test(sha256_of_abc),
		cmocka_unit_test(sha256_of_two_block_message),
		cmocka_unit_test(sha256_of_a_million_a_fed_in_odd_pieces),
		cmocka_unit_test(hmac_rfc4231_case_2),
		cmocka_unit_test(hmac_rfc4231_case_6_long_key),
		cmocka_unit_test(constant_time_compare_finds_any_difference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
