/* The workload API's request parser and the checks of its bodies: what the
 * module SDKs send is answered, everything else refused with the right
 * status. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "agent/workload.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static int parse(const char *text, struct workload_request *req, int *status, struct berr *err)
{
	return workload_parse_request(text, strlen(text), req, status, err);
}

static void parse_ok(const char *text, struct workload_request *req)
{
	int status;
	struct berr err = {0};
	if (parse(text, req, &status, &err) != 1)
		fail_msg("refused (%d): %s", status, err.msg);
}

static void expect_status(const char *r, int want, const char *needle)
{
	struct workload_request req;
	int status = 0;
	struct berr err = {0};
	assert_int_equal(parse(r, &req, &status, &err), -1);
	if (status != want || (needle && !strstr(err.msg, needle)))
		fail_msg("status %d (want %d): %s", status, want, err.msg);
}

static void sign_request_as_node_sends_it(void **state)
{
	struct workload_request req;
	parse_ok("POST /modules/web/genid/abc123/sign?api-version=2018-06-28 HTTP/1.1\r\n"
		 "Host: localhost\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
		 "Connection: close\r\n\r\nhello",
		 &req);
	assert_int_equal(req.op, WORKLOAD_SIGN);
	assert_string_equal(req.module, "web");
	assert_string_equal(req.genid, "abc123");
	assert_int_equal(req.body_len, 5);
	assert_memory_equal(req.body, "hello", 5);
}

static void requests_as_the_c_sdk_sends_them(void **state)
{
	/* azure-uhttp-c: Host is the socket path and port 0, content-length in
	 * lower case, also on a GET. */
	struct workload_request req;
	parse_ok("GET /trust-bundle?api-version=2018-06-28 HTTP/1.1\r\n"
		 "Host: /var/run/iotedge/workload.sock:0\r\ncontent-length: 0\r\n\r\n",
		 &req);
	assert_int_equal(req.op, WORKLOAD_TRUST_BUNDLE);
	parse_ok("POST /modules/web/genid/1/sign?api-version=2018-06-28 HTTP/1.1\r\n"
		 "Content-Type: application/json; charset=utf-8\r\n"
		 "Host: /var/run/iotedge/workload.sock:0\r\ncontent-length: 2\r\n\r\n{}",
		 &req);
	assert_int_equal(req.op, WORKLOAD_SIGN);
	assert_int_equal(req.body_len, 2);
}

static void requests_as_the_python_sdk_sends_them(void **state)
{
	/* requests-unixsocket: no Content-Type, the encoded socket path as
	 * Host, a percent-encoded module name. */
	struct workload_request req;
	parse_ok("POST /modules/my%2Dmodule/genid/1/sign?api-version=2019-10-22 HTTP/1.1\r\n"
		 "Host: %2Fvar%2Frun%2Fiotedge%2Fworkload.sock\r\nUser-Agent: py\r\n"
		 "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n"
		 "Content-Length: 2\r\n\r\n{}",
		 &req);
	assert_string_equal(req.module, "my-module");
	parse_ok("GET /trust-bundle?api-version=2019-10-22 HTTP/1.1\r\n"
		 "Host: %2Fvar%2Frun%2Fiotedge%2Fworkload.sock\r\nConnection: keep-alive\r\n\r\n",
		 &req);
	assert_int_equal(req.op, WORKLOAD_TRUST_BUNDLE);
}

static void every_operation_is_routed(void **state)
{
	static const struct {
		const char *line;
		enum workload_op op;
	} cases[] = {
	    {"GET /manifest-trust-bundle", WORKLOAD_MANIFEST_TRUST_BUNDLE},
	    {"POST /modules/m/genid/1/certificate/server", WORKLOAD_SERVER_CERT},
	    {"POST /modules/m/genid/1/encrypt", WORKLOAD_ENCRYPT},
	    {"POST /modules/m/genid/1/decrypt", WORKLOAD_DECRYPT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char r[256];
		snprintf(r, sizeof(r), "%s?api-version=2022-08-03 HTTP/1.1\r\n\r\n", cases[i].line);
		struct workload_request req;
		parse_ok(r, &req);
		assert_int_equal(req.op, cases[i].op);
	}
}

static void every_api_version_is_accepted_and_others_refused(void **state)
{
	const char *versions[] = {"2018-06-28", "2019-01-30", "2019-10-22", "2019-11-05",
				  "2020-07-07", "2021-12-07", "2022-08-03"};
	for (size_t i = 0; i < 7; i++) {
		char r[256];
		snprintf(r, sizeof(r), "GET /trust-bundle?api-version=%s HTTP/1.1\r\n\r\n",
			 versions[i]);
		struct workload_request req;
		parse_ok(r, &req);
	}
	expect_status("GET /trust-bundle?api-version=2017-01-01 HTTP/1.1\r\n\r\n", 400,
		      "api-version 2017-01-01 is not supported");
	expect_status("GET /trust-bundle HTTP/1.1\r\n\r\n", 400, "api-version is required");
}

static void partial_request_needs_more(void **state)
{
	struct workload_request req;
	int status;
	struct berr err;
	assert_int_equal(parse("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
			       "Cont",
			       &req, &status, &err),
			 0);
	assert_int_equal(parse("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
			       "Content-Length: 10\r\n\r\nabc",
			       &req, &status, &err),
			 0);
}

static void other_paths_are_not_found(void **state)
{
	expect_status("GET /modules?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 404, "not found");
	expect_status("POST /modules/web/genid/a/certificate/identity?api-version=2019-01-30 "
		      "HTTP/1.1\r\n\r\n",
		      404, "not found");
	expect_status("GET /trust-bundle/x?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 404, NULL);
}

static void wrong_methods_are_not_allowed(void **state)
{
	expect_status("GET /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 405,
		      "use POST");
	expect_status("POST /trust-bundle?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 405, "use GET");
}

static void bad_names_are_refused(void **state)
{
	expect_status("POST /modules/../genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 400,
		      "not a module name");
	expect_status("POST /modules/a%2fb/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n\r\n",
		      400, "not a module name");
	expect_status("POST /modules/a/genid/x%20y/sign?api-version=2019-01-30 HTTP/1.1\r\n\r\n",
		      400, "generation id");
	expect_status("POST /modules/a%00/genid/1/sign?api-version=2019-01-30 HTTP/1.1\r\n\r\n",
		      400, NULL);
}

static void chunked_and_duplicate_lengths_are_refused(void **state)
{
	expect_status("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      411, "Content-Length");
	expect_status("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
		      "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
		      400, "Content-Length");
	expect_status("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
		      "Content-Length: -1\r\n\r\n",
		      400, "Content-Length");
}

static void malformed_requests_are_refused(void **state)
{
	expect_status("GET  /trust-bundle?api-version=2019-01-30 HTTP/1.1\r\n\r\n", 400, NULL);
	expect_status("GET /trust-bundle?api-version=2019-01-30 HTTP/2.0\r\n\r\n", 400, NULL);
	expect_status("GET http://x/trust-bundle HTTP/1.1\r\n\r\n", 400, "path");
	expect_status("GET /trust-bundle?api-version=2019-01-30 HTTP/1.1\r\nBad\r\n\r\n", 400,
		      "header");
	expect_status("GET /trust-bundle?api-version=2019-01-30 HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
		      400, "folded");
	expect_status("GET /a/b/c/d/e/f/g/h/i HTTP/1.1\r\n\r\n", 414, "segments");
}

static void oversized_parts_are_refused(void **state)
{
	expect_status("POST /modules/web/genid/a/sign?api-version=2019-01-30 HTTP/1.1\r\n"
		      "Content-Length: 999999\r\n\r\n",
		      413, NULL);
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

static void rfc3339_times_are_read(void **state)
{
	int64_t t;
	assert_int_equal(rfc3339_parse("2030-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(rfc3339_parse("2030-01-01T01:30:00.123456+01:30", &t), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(rfc3339_parse("1970-01-01T00:00:00-00:00", &t), 0);
	assert_int_equal(t, 0);
	const char *bad[] = {"2030-01-01",
			     "2030-13-01T00:00:00Z",
			     "2030-02-30T00:00:00Z",
			     "2030-01-01T24:00:00Z",
			     "2030-01-01T00:00:00",
			     "2030-01-01T00:00:00Zx",
			     "2030-01-01T00:00:00.Z",
			     "2030-01-01 00:00:00Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rfc3339_parse(bad[i], &t) == 0)
			fail_msg("%s was accepted", bad[i]);
	char out[32];
	rfc3339_format(1893456000, out);
	assert_string_equal(out, "2030-01-01T00:00:00+00:00");
}

static void certificate_requests_are_checked(void **state)
{
	struct workload_cert_request cr;
	int status;
	struct berr err;
	const char *ok = "{\"commonName\":\"web.local\",\"expiration\":\"2030-01-01T00:00:00Z\"}";
	assert_int_equal(
	    workload_cert_request_parse(ok, strlen(ok), 1700000000, &cr, &status, &err), 0);
	assert_string_equal(cr.common_name, "web.local");
	assert_int_equal(cr.expiration, 1893456000);
	const char *no_exp = "{\"commonName\":\"10.0.0.1\"}";
	assert_int_equal(
	    workload_cert_request_parse(no_exp, strlen(no_exp), 1700000000, &cr, &status, &err), 0);
	assert_int_equal(cr.expiration, 0);
	const char *bad[] = {
	    "{\"expiration\":\"2030-01-01T00:00:00Z\"}",
	    "{\"commonName\":\"a b\"}",
	    "{\"commonName\":\"x\",\"expiration\":\"tomorrow\"}",
	    "{\"commonName\":\"x\",\"expiration\":\"2001-01-01T00:00:00Z\"}",
	    "{\"commonName\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	    "[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(workload_cert_request_parse(bad[i], strlen(bad[i]), 1700000000,
							     &cr, &status, &err),
				 -1);
		assert_int_equal(status, 400);
	}
}

static void crypt_requests_are_checked(void **state)
{
	struct workload_crypt_request cr;
	int status;
	struct berr err;
	const char *ok = "{\"plaintext\":\"aGVsbG8=\",\"initializationVector\":\"aXY=\"}";
	assert_int_equal(workload_crypt_request_parse(ok, strlen(ok), false, &cr, &status, &err),
			 0);
	assert_int_equal(cr.len, 5);
	assert_memory_equal(cr.data, "hello", 5);
	assert_int_equal(cr.iv_len, 2);
	const char *bad[] = {
	    "{\"plaintext\":\"aGVsbG8=\"}",
	    "{\"plaintext\":\"!!\",\"initializationVector\":\"aXY=\"}",
	    "{\"plaintext\":\"aGVsbG8=\",\"initializationVector\":\"\"}",
	    "{\"ciphertext\":\"aGVsbG8=\",\"initializationVector\":\"aXY=\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    workload_crypt_request_parse(bad[i], strlen(bad[i]), false, &cr, &status, &err),
		    -1);
		assert_int_equal(status, 400);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sign_request_as_node_sends_it),
	    cmocka_unit_test(requests_as_the_c_sdk_sends_them),
	    cmocka_unit_test(requests_as_the_python_sdk_sends_them),
	    cmocka_unit_test(every_operation_is_routed),
	    cmocka_unit_test(every_api_version_is_accepted_and_others_refused),
	    cmocka_unit_test(partial_request_needs_more),
	    cmocka_unit_test(other_paths_are_not_found),
	    cmocka_unit_test(wrong_methods_are_not_allowed),
	    cmocka_unit_test(bad_names_are_refused),
	    cmocka_unit_test(chunked_and_duplicate_lengths_are_refused),
	    cmocka_unit_test(malformed_requests_are_refused),
	    cmocka_unit_test(oversized_parts_are_refused),
	    cmocka_unit_test(sign_gives_hmac_sha256_of_the_data),
	    cmocka_unit_test(sign_refuses_other_keys_and_algorithms),
	    cmocka_unit_test(rfc3339_times_are_read),
	    cmocka_unit_test(certificate_requests_are_checked),
	    cmocka_unit_test(crypt_requests_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
