/* The workload API's request parser and signer: what a module SDK sends is
 * answered, everything else refused with the right status. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "agent/workload.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static int parse(const char *text, struct workload_request *req, int *status, struct berr *err)
{
	return workload_parse_request(text, strlen(text), req, status, err);
}

static void sign_request_is_parsed(void **state)
{
	const char *r =
	    "POST /modules/web/genid/abc123/sign?api-version=2019-01-30 HTTP/1.1\r\n"
	    "Host: localhost\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n"
	    "hello";
	struct workload_request req;
	int status;
	struct berr err;
	assert_int_equal(parse(r, &req, &status, &err), 1);
	assert_string_equal(req.module, "web");
	assert_string_equal(req.genid, "abc123");
	assert_int_equal(req.body_len, 5);
	assert_memory_equal(req.body, "hello", 5);
}

static void partial_request_needs_more(void **state)
{
	struct workload_request req;
	int status;
	struct berr err;
	assert_int_equal(parse("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\nCont",
			       &req, &status, &err),
			 0);
	assert_int_equal(parse("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n"
			       "Content-Length: 10\r\n\r\nabc",
			       &req, &status, &err),
			 0);
}

static void expect_status(const char *r, int want)
{
	struct workload_request req;
	int status = 0;
	struct berr err;
	assert_int_equal(parse(r, &req, &status, &err), -1);
	assert_int_equal(status, want);
}

static void other_paths_are_not_found(void **state)
{
	expect_status("GET /trust-bundle?api-version=1 HTTP/1.1\r\n\r\n", 404);
	expect_status(
	    "POST /modules/web/genid/a/encrypt?api-version=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
	    404);
}

static void get_is_not_allowed(void **state)
{
	expect_status("GET /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n\r\n", 405);
}

static void api_version_is_required(void **state)
{
	expect_status("POST /modules/web/genid/a/sign HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400);
}

static void traversal_in_module_name_is_refused(void **state)
{
	expect_status("POST /modules/../genid/a/sign?api-version=1 HTTP/1.1\r\n\r\n", 400);
	expect_status("POST /modules/a%2fb/genid/a/sign?api-version=1 HTTP/1.1\r\n\r\n", 400);
}

static void missing_length_and_chunked_are_refused(void **state)
{
	expect_status("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n\r\n", 411);
	expect_status("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      411);
	expect_status("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n"
		      "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
		      400);
}

static void oversized_parts_are_refused(void **state)
{
	expect_status("POST /modules/web/genid/a/sign?api-version=1 HTTP/1.1\r\n"
		      "Content-Length: 999999\r\n\r\n",
		      413);
	static char big[WORKLOAD_HEADER_MAX + 100];
	memset(big, 'a', sizeof(big) - 1);
	struct workload_request req;
	int status;
	struct berr err;
	assert_int_equal(workload_parse_request(big, sizeof(big) - 1, &req, &status, &err), -1);
	assert_int_equal(status, 431);
}

static void sign_gives_hmac_sha256_of_the_data(void **state)
{
	/* Python: base64(hmac.new(bytes(range(32)), b"hello", sha256).digest()) */
	const char *body = "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"aGVsbG8=\"}";
	char digest[128];
	int status;
	struct berr err;
	assert_int_equal(
	    workload_sign(body, strlen(body), KEY, digest, sizeof(digest), &status, &err), 0);
	assert_int_equal(status, 200);
	assert_string_equal(digest, "U8QCcqcMFcpO4K9N8fFV/WxB4AziMH2Jh+zUuzan6ZA=");
}

static void sign_refuses_other_keys_and_algorithms(void **state)
{
	char digest[128];
	int status;
	struct berr err;
	const char *b1 = "{\"keyId\":\"secondary\",\"algo\":\"HMACSHA256\",\"data\":\"aGVsbG8=\"}";
	assert_int_equal(workload_sign(b1, strlen(b1), KEY, digest, sizeof(digest), &status, &err),
			 -1);
	assert_int_equal(status, 400);
	const char *b2 = "{\"keyId\":\"primary\",\"algo\":\"MD5\",\"data\":\"aGVsbG8=\"}";
	assert_int_equal(workload_sign(b2, strlen(b2), KEY, digest, sizeof(digest), &status, &err),
			 -1);
	const char *b3 = "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"!!\"}";
	assert_int_equal(workload_sign(b3, strlen(b3), KEY, digest, sizeof(digest), &status, &err),
			 -1);
	assert_non_null(strstr(err.msg, "base64"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sign_request_is_parsed),
	    cmocka_unit_test(partial_request_needs_more),
	    cmocka_unit_test(other_paths_are_not_found),
	    cmocka_unit_test(get_is_not_allowed),
	    cmocka_unit_test(api_version_is_required),
	    cmocka_unit_test(traversal_in_module_name_is_refused),
	    cmocka_unit_test(missing_length_and_chunked_are_refused),
	    cmocka_unit_test(oversized_parts_are_refused),
	    cmocka_unit_test(sign_gives_hmac_sha256_of_the_data),
	    cmocka_unit_test(sign_refuses_other_keys_and_algorithms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
