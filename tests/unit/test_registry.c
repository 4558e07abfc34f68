/* registry/: image references and WWW-Authenticate challenges. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "registry/registry.h"

static void expect_ref(const char *in, const char *normalized)
{
	struct image_ref r;
	struct berr err;
	char out[REF_STR_MAX];
	if (image_ref_parse(in, &r, &err) < 0)
		fail_msg("%s: %s", in, err.msg);
	image_ref_format(&r, out);
	assert_string_equal(out, normalized);
}

static void expect_bad_ref(const char *in, const char *why)
{
	struct image_ref r;
	struct berr err;
	assert_int_equal(image_ref_parse(in, &r, &err), -1);
	if (!strstr(err.msg, why))
		fail_msg("%s: message \"%s\" lacks \"%s\"", in, err.msg, why);
}

static void short_names_mean_docker_hub_library(void **state)
{
	expect_ref("busybox", "docker.io/library/busybox:latest");
	expect_ref("busybox:1.36", "docker.io/library/busybox:1.36");
	expect_ref("user/app", "docker.io/user/app:latest");
	expect_ref("index.docker.io/busybox", "docker.io/library/busybox:latest");
}

static void first_component_with_dot_colon_or_localhost_is_a_host(void **state)
{
	expect_ref("127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1");
	expect_ref("localhost/app", "localhost/app:latest");
	expect_ref("ghcr.io/org/team/app:v2.0-rc_1", "ghcr.io/org/team/app:v2.0-rc_1");
	expect_ref("my-registry.example.com:443/a/b", "my-registry.example.com:443/a/b:latest");
	expect_ref("[::1]:5000/app", "[::1]:5000/app:latest");
}

static void digest_references_keep_the_digest(void **state)
{
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char in[256], want[256];
	snprintf(in, sizeof(in), "127.0.0.1:5000/app@%s", d);
	expect_ref(in, in);
	snprintf(in, sizeof(in), "127.0.0.1:5000/app:1@%s", d);
	expect_ref(in, in);
	snprintf(in, sizeof(in), "busybox@%s", d);
	snprintf(want, sizeof(want), "docker.io/library/busybox@%s", d);
	expect_ref(in, want);
	struct image_ref r;
	struct berr err;
	assert_int_equal(image_ref_parse(in, &r, &err), 0);
	assert_string_equal(r.digest, d);
	assert_string_equal(r.tag, "");
}

static void path_separators_follow_the_grammar(void **state)
{
	expect_ref("a/b__c/d.e/f-g---h", "docker.io/a/b__c/d.e/f-g---h:latest");
	expect_bad_ref("a/b___c", "invalid repository name");
	expect_bad_ref("a/.b", "invalid repository name");
	expect_bad_ref("a/b-", "invalid repository name");
	expect_bad_ref("a//b", "invalid repository name");
	expect_bad_ref("host.io/a/", "ends with '/'");
}

static void malformed_references_are_refused(void **state)
{
	expect_bad_ref("", "empty");
	expect_bad_ref("Busybox", "invalid repository name");
	expect_bad_ref("127.0.0.1:5000/App:1", "invalid repository name");
	expect_bad_ref("app:", "invalid tag");
	expect_bad_ref("app:-x", "invalid tag");
	expect_bad_ref("app:a/b", "invalid registry host");
	expect_bad_ref("app@sha256:abc", "malformed digest");
	expect_bad_ref("app@md5:0123", "malformed digest");
	expect_bad_ref("app with space", "space or control");
	expect_bad_ref("host:99x/app", "invalid registry host");
	expect_bad_ref("-host.io/app", "invalid registry host");
	expect_bad_ref(":5000/app", "invalid registry host");
	expect_bad_ref("docker.io/", "no repository name");
	expect_bad_ref("127.0.0.1:5000/:1", "no repository name");
}

static void over_long_names_and_tags_are_refused(void **state)
{
	char in[600];
	memset(in, 'a', sizeof(in));
	in[sizeof(in) - 1] = '\0';
	expect_bad_ref(in, "");
	char tag[200];
	snprintf(tag, sizeof(tag), "app:%0129d", 0);
	expect_bad_ref(tag, "invalid tag");
	char name[300];
	memset(name, 'b', 260);
	name[260] = '\0';
	expect_bad_ref(name, "longer than 255");
}

static void docker_hub_api_lives_on_registry_1(void **state)
{
	struct image_ref r;
	struct berr err;
	assert_int_equal(image_ref_parse("busybox", &r, &err), 0);
	assert_string_equal(image_ref_api_host(&r), "registry-1.docker.io");
	assert_int_equal(image_ref_parse("127.0.0.1:5000/x", &r, &err), 0);
	assert_string_equal(image_ref_api_host(&r), "127.0.0.1:5000");
}

static void bearer_challenge_gives_realm_service_and_scope(void **state)
{
	struct auth_challenge c;
	struct berr err;
	assert_int_equal(auth_challenge_parse("Bearer realm=\"https://auth.example.io/token\","
					      "service=\"registry.example.io\","
					      "scope=\"repository:library/busybox:pull\"",
					      &c, &err),
			 0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://auth.example.io/token");
	assert_string_equal(c.service, "registry.example.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");
}

static void challenge_names_are_case_insensitive_and_values_may_be_tokens(void **state)
{
	struct auth_challenge c;
	struct berr err;
	assert_int_equal(
	    auth_challenge_parse("bEaReR Realm=https://a.io/t , SERVICE=reg", &c, &err), 0);
	assert_int_equal(c.scheme, AUTH_BEARER);
	assert_string_equal(c.realm, "https://a.io/t");
	assert_string_equal(c.service, "reg");
	assert_string_equal(c.scope, "");
}

static void quoted_strings_unescape(void **state)
{
	struct auth_challenge c;
	struct berr err;
	assert_int_equal(auth_challenge_parse("Basic realm=\"say \\\"hi\\\", ok\"", &c, &err), 0);
	assert_int_equal(c.scheme, AUTH_BASIC);
	assert_string_equal(c.realm, "say \"hi\", ok");
}

static void first_known_challenge_wins(void **state)
{
	struct auth_challenge c;
	struct berr err;
	assert_int_equal(auth_challenge_parse("Negotiate abc, Basic realm=\"r1\", "
					      "Bearer realm=\"https://x.io/\"",
					      &c, &err),
			 0);
	assert_int_equal(c.scheme, AUTH_BASIC);
	assert_string_equal(c.realm, "r1");
}

static void unusable_challenges_are_refused(void **state)
{
	struct auth_challenge c;
	struct berr err;
	assert_int_equal(auth_challenge_parse("Digest realm=\"x\"", &c, &err), -1);
	assert_non_null(strstr(err.msg, "no supported scheme"));
	assert_int_equal(auth_challenge_parse("Bearer service=\"x\"", &c, &err), -1);
	assert_non_null(strstr(err.msg, "without a realm"));
	assert_int_equal(auth_challenge_parse("Bearer realm=\"file:///etc/passwd\"", &c, &err), -1);
	assert_non_null(strstr(err.msg, "not an http(s) URL"));
	assert_int_equal(auth_challenge_parse("Bearer realm=\"unterminated", &c, &err), -1);
	assert_int_equal(auth_challenge_parse("", &c, &err), -1);
}

static void over_long_challenges_are_refused(void **state)
{
	struct auth_challenge c;
	struct berr err;
	static char big[8192];
	snprintf(big, sizeof(big), "Bearer realm=\"https://x.io/%04000d\"", 0);
	assert_int_equal(auth_challenge_parse(big, &c, &err), -1);
	assert_non_null(strstr(err.msg, "malformed"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(auth_challenge_parse(big, &c, &err), -1);
	assert_non_null(strstr(err.msg, "longer than"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(short_names_mean_docker_hub_library),
	    cmocka_unit_test(first_component_with_dot_colon_or_localhost_is_a_host),
	    cmocka_unit_test(digest_references_keep_the_digest),
	    cmocka_unit_test(path_separators_follow_the_grammar),
	    cmocka_unit_test(malformed_references_are_refused),
	    cmocka_unit_test(over_long_names_and_tags_are_refused),
	    cmocka_unit_test(docker_hub_api_lives_on_registry_1),
	    cmocka_unit_test(bearer_challenge_gives_realm_service_and_scope),
	    cmocka_unit_test(challenge_names_are_case_insensitive_and_values_may_be_tokens),
	    cmocka_unit_test(quoted_strings_unescape),
	    cmocka_unit_test(first_known_challenge_wins),
	    cmocka_unit_test(unusable_challenges_are_refused),
	    cmocka_unit_test(over_long_challenges_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
