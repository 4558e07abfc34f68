/* The gateway's HTTPS requests (module-to-module direct methods): what the
 * Node, C and Python SDKs send is read, the rest refused with its status. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "hub/gateway_http.h"

#define TOKEN "SharedAccessSignature sr=h.example.net%2Fdevices%2Fd1%2Fmodules%2Fa&sig=x&se=9"

static int parse(const char *head, const char *body, struct gateway_method_request *req,
		 int *status, struct berr *err)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf), "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body), body);
	return gateway_http_parse(buf, strlen(buf), req, status, err);
}

static void node_request_is_read(void **state)
{
	struct gateway_method_request req;
	int status;
	struct berr err = {0};
	int rc = parse("POST /twins/d1/modules/b/methods HTTP/1.1\r\n"
		       "Content-Type: application/json\r\nx-ms-edge-moduleId: d1/a\r\n"
		       "Authorization: " TOKEN "\r\nRequest-Id: 7\r\nHost: gw.example.test\r\n"
		       "Connection: close\r\n",
		       "{\"methodName\":\"reboot\",\"payload\":{\"in\":1},"
		       "\"responseTimeoutInSeconds\":12,\"connectTimeoutInSeconds\":3}",
		       &req, &status, &err);
	if (rc != 1)
		fail_msg("refused (%d): %s", status, err.msg);
	assert_string_equal(req.device, "d1");
	assert_string_equal(req.module, "b");
	assert_string_equal(req.caller_device, "d1");
	assert_string_equal(req.caller_module, "a");
	assert_string_equal(req.token, TOKEN);
	assert_string_equal(req.method, "reboot");
	assert_int_equal(req.timeout_secs, 12);
	assert_true(YAJL_IS_OBJECT(req.payload));
	gateway_method_request_clear(&req);
}

static void c_and_python_forms_are_read(void **state)
{
	struct gateway_method_request req;
	int status;
	struct berr err = {0};
	/* The C SDK: "timeout", lower-case header names, an api-version. */
	assert_int_equal(
	    parse("POST /twins/d1/modules/b/methods?api-version=2018-06-30 HTTP/1.1\r\n"
		  "authorization: " TOKEN "\r\nx-ms-edge-moduleid: d1/a\r\n",
		  "{\"methodName\":\"m\",\"timeout\":5,\"payload\":\"s\"}", &req, &status, &err),
	    1);
	assert_int_equal(req.timeout_secs, 5);
	assert_true(YAJL_IS_STRING(req.payload));
	gateway_method_request_clear(&req);
	/* No timeout, no payload: 30 s and none. */
	assert_int_equal(parse("POST /twins/d1/modules/b/methods HTTP/1.1\r\n"
			       "Authorization: " TOKEN "\r\nx-ms-edge-moduleId: d1/a\r\n",
			       "{\"methodName\":\"m\"}", &req, &status, &err),
			 1);
	assert_int_equal(req.timeout_secs, 30);
	assert_null(req.payload);
	gateway_method_request_clear(&req);
}

static void expect(const char *head, const char *body, int want, const char *needle)
{
	struct gateway_method_request req;
	int status = 0;
	struct berr err = {0};
	assert_int_equal(parse(head, body, &req, &status, &err), -1);
	if (status != want || !strstr(err.msg, needle))
		fail_msg("status %d (want %d): %s", status, want, err.msg);
	gateway_method_request_clear(&req);
}

static void refusals_have_their_status(void **state)
{
	const char *ok_headers = "Authorization: " TOKEN "\r\nx-ms-edge-moduleId: d1/a\r\n";
	char head[1024];
	snprintf(head, sizeof(head), "POST /twins/d1/methods HTTP/1.1\r\n%s", ok_headers);
	expect(head, "{\"methodName\":\"m\"}", 404, "not found");
	snprintf(head, sizeof(head), "GET /twins/d1/modules/b/methods HTTP/1.1\r\n%s", ok_headers);
	expect(head, "", 405, "POST");
	expect("POST /twins/d1/modules/b/methods HTTP/1.1\r\nAuthorization: " TOKEN "\r\n",
	       "{\"methodName\":\"m\"}", 401, "x-ms-edge-moduleId");
	expect("POST /twins/d1/modules/b/methods HTTP/1.1\r\nx-ms-edge-moduleId: a\r\n"
	       "Authorization: " TOKEN "\r\n",
	       "{\"methodName\":\"m\"}", 401, "x-ms-edge-moduleId");
	expect("POST /twins/d1/modules/b/methods HTTP/1.1\r\nx-ms-edge-moduleId: d1/a\r\n",
	       "{\"methodName\":\"m\"}", 401, "Authorization");
	snprintf(head, sizeof(head), "POST /twins/d1/modules/b%%2F/methods HTTP/1.1\r\n%s",
		 ok_headers);
	expect(head, "{\"methodName\":\"m\"}", 400, "name");
	snprintf(head, sizeof(head), "POST /twins/d1/modules/b/methods HTTP/1.1\r\n%s", ok_headers);
	expect(head, "{\"payload\":1}", 400, "methodName");
	expect(head, "not json", 400, "");
	expect(head, "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":301}", 400, "0 to 300");
	expect(head, "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":\"5\"}", 400, "0 to 300");
	snprintf(head, sizeof(head),
		 "POST /twins/d1/modules/b/methods HTTP/1.1\r\n%sAuthorization: x\r\n", ok_headers);
	expect(head, "{\"methodName\":\"m\"}", 400, "twice");
}

static void a_partial_request_waits(void **state)
{
	const char *r = "POST /twins/d1/modules/b/methods HTTP/1.1\r\nContent-Length: 40\r\n\r\n{";
	struct gateway_method_request req;
	int status;
	struct berr err;
	assert_int_equal(gateway_http_parse(r, strlen(r), &req, &status, &err), 0);
	gateway_method_request_clear(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(node_request_is_read),
	    cmocka_unit_test(c_and_python_forms_are_read),
	    cmocka_unit_test(refusals_have_their_status),
	    cmocka_unit_test(a_partial_request_waits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
