#include "agent/workload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/http.h"
#include "common/json.h"
#include "common/sas.h"
#include "common/sha256.h"

/* Every version of IoT Edge's workload API; the calls berth serves are the
 * same in all of them. */
static const char *const api_versions[] = {"2018-06-28", "2019-01-30", "2019-10-22", "2019-11-05",
					   "2020-07-07", "2021-12-07", "2022-08-03"};

static int fail(int *status, int code, struct berr *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int *status, int code, struct berr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*status = code;
	return berr_set(err, 0, "%s", msg);
}

static int module_route(const struct http_request *h, struct workload_request *req, int *status,
			struct berr *err)
{
	/* /modules/<m>/genid/<g>/<op>[/<sub>] */
	static const struct {
		const char *op, *sub;
		enum workload_op id;
	} ops[] = {
	    {"sign", NULL, WORKLOAD_SIGN},
	    {"certificate", "server", WORKLOAD_SERVER_CERT},
	    {"encrypt", NULL, WORKLOAD_ENCRYPT},
	    {"decrypt", NULL, WORKLOAD_DECRYPT},
	};
	if (h->n_segments < 5 || strcmp(h->segments[2], "genid"))
		return 0;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t want = ops[i].sub ? 6 : 5;
		if (h->n_segments != want || strcmp(h->segments[4], ops[i].op) ||
		    (ops[i].sub && strcmp(h->segments[5], ops[i].sub)))
			continue;
		if (!module_name_valid(h->segments[1]))
			return fail(status, 400, err, "\"%.64s\" is not a module name",
				    h->segments[1]);
		size_t glen = strlen(h->segments[3]);
		if (glen == 0 || glen >= sizeof(req->genid) ||
		    strspn(h->segments[3], "0123456789abcdefABCDEF-") != glen)
			return fail(status, 400, err, "malformed generation id");
		snprintf(req->module, sizeof(req->module), "%s", h->segments[1]);
		memcpy(req->genid, h->segments[3], glen + 1);
		req->op = ops[i].id;
		return 1;
	}
	return 0;
}

int workload_parse_request(const char *buf, size_t len, struct workload_request *req, int *status,
			   struct berr *err)
{
	memset(req, 0, sizeof(*req));
	static const struct http_limits limits = {WORKLOAD_HEADER_MAX, WORKLOAD_BODY_MAX};
	struct http_request h;
	int rc = http_request_parse(buf, len, &limits, &h, NULL, 0, status, err);
	if (rc <= 0)
		return rc;
	bool get = false;
	if (h.n_segments == 1 && !strcmp(h.segments[0], "trust-bundle")) {
		req->op = WORKLOAD_TRUST_BUNDLE;
		get = true;
	} else if (h.n_segments == 1 && !strcmp(h.segments[0], "manifest-trust-bundle")) {
		req->op = WORKLOAD_MANIFEST_TRUST_BUNDLE;
		get = true;
	} else if (!strcmp(h.segments[0], "modules") &&
		   (rc = module_route(&h, req, status, err)) != 0) {
		if (rc < 0)
			return -1;
	} else {
		return fail(
		    status, 404, err,
		    "not found: berth serves /trust-bundle, /manifest-trust-bundle and "
		    "/modules/<name>/genid/<genid>/{sign,certificate/server,encrypt,decrypt}");
	}
	if (!h.api_version[0])
		return fail(status, 400, err, "api-version is required");
	bool known = false;
	for (size_t i = 0; i < sizeof(api_versions) / sizeof(api_versions[0]); i++)
		known |= !strcmp(h.api_version, api_versions[i]);
	if (!known)
		return fail(status, 400, err,
			    "api-version %s is not supported: use one of 2018-06-28 to 2022-08-03",
			    h.api_version);
	if (strcmp(h.method, get ? "GET" : "POST"))
		return fail(status, 405, err, "method not allowed: use %s", get ? "GET" : "POST");
	req->body = h.body;
	req->body_len = h.body_len;
	*status = 200;
	return 1;
}

int workload_sign(const char *body, size_t body_len, const char *module_key_b64, char *digest,
		  size_t cap, int *status, struct berr *err)
{
	*status = 400;
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse(body, body_len, WORKLOAD_BODY_MAX, "sign request", &doc, err) < 0)
		return -1;
	const char *key_id = json_str(json_get(doc, "keyId"));
	const char *algo = json_str(json_get(doc, "algo"));
	const char *data = json_str(json_get(doc, "data"));
	if (!key_id || strcmp(key_id, "primary"))
		return berr_set(err, 0, "sign request: keyId must be \"primary\"");
	if (!algo || strcmp(algo, "HMACSHA256"))
		return berr_set(err, 0, "sign request: algo must be \"HMACSHA256\"");
	if (!data)
		return berr_set(err, 0, "sign request: data is required");
	size_t dlen = strlen(data);
	cleanup_free unsigned char *raw = malloc(dlen + 1);
	unsigned char key[SAS_KEY_B64_MAX];
	int rlen = raw ? base64_decode(data, dlen, raw, dlen + 1) : -1;
	if (rlen < 0)
		return berr_set(err, 0, "sign request: data is not base64");
	int klen = base64_decode(module_key_b64, strlen(module_key_b64), key, sizeof(key));
	if (klen <= 0) {
		*status = 500;
		return berr_set(err, 0, "module key");
	}
	unsigned char mac[SHA256_LEN];
	hmac_sha256(key, (size_t)klen, raw, (size_t)rlen, mac);
	explicit_bzero(key, sizeof(key));
	if (base64_encode(mac, sizeof(mac), digest, cap) < 0) {
		*status = 500;
		return berr_set(err, 0, "digest buffer too small");
	}
	*status = 200;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), without timegm's
 * dependence on the process's time zone state. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

int rfc3339_parse(const char *s, int64_t *out)
{
	unsigned y, mo, d, h, mi, se;
	size_t len = strlen(s);
	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
	    !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
	    !digits(s + 17, 2, &se))
		return -1;
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return -1;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		size_t n = strspn(p, "0123456789");
		if (n == 0 || n > 9)
			return -1;
		p += n;
	}
	int64_t offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		unsigned oh, om;
		if (!digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*out =
	    days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (se > 59 ? 59 : se) - offset;
	return 0;
}

void rfc3339_format(int64_t secs, char out[32])
{
	time_t t = (time_t)secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A DNS name or an IP address, as a certificate's SAN can carry it. */
static bool cn_valid(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= WORKLOAD_CN_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:") ==
		   n &&
	       s[0] != '.' && s[0] != '-';
}

int workload_cert_request_parse(const char *body, size_t len, int64_t now,
				struct workload_cert_request *out, int *status, struct berr *err)
{
	*status = 400;
	memset(out, 0, sizeof(*out));
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse(body, len, WORKLOAD_BODY_MAX, "certificate request", &doc, err) < 0)
		return -1;
	if (!YAJL_IS_OBJECT(doc))
		return berr_set(err, 0, "certificate request: expected an object");
	const char *cn = json_str(json_get(doc, "commonName"));
	yajl_val exp = json_get(doc, "expiration");
	if (!cn)
		return berr_set(err, 0, "certificate request: commonName is required");
	if (!cn_valid(cn))
		return berr_set(err, 0,
				"certificate request: commonName must be a host name or address of "
				"at most %d characters",
				WORKLOAD_CN_MAX);
	snprintf(out->common_name, sizeof(out->common_name), "%s", cn);
	if (exp) {
		if (!json_str(exp) || rfc3339_parse(json_str(exp), &out->expiration) < 0)
			return berr_set(err, 0,
					"certificate request: expiration must be an RFC 3339 time "
					"such as 2030-01-01T00:00:00Z");
		if (out->expiration <= now)
			return berr_set(err, 0, "certificate request: expiration %s has passed",
					json_str(exp));
	}
	*status = 200;
	return 0;
}

static int b64_member(yajl_val doc, const char *key, unsigned char *out, size_t cap, size_t *len,
		      struct berr *err)
{
	const char *s = json_str(json_get(doc, key));
	if (!s)
		return berr_set(err, 0, "%s is required", key);
	size_t sl = strlen(s);
	if (sl > base64_encoded_len(cap))
		return berr_set(err, 0, "%s is longer than %zu bytes", key, cap);
	int n = base64_decode(s, sl, out, cap);
	if (n < 0)
		return berr_set(err, 0, "%s is not base64", key);
	*len = (size_t)n;
	return 0;
}

int workload_crypt_request_parse(const char *body, size_t len, bool decrypt,
				 struct workload_crypt_request *out, int *status, struct berr *err)
{
	*status = 400;
	out->len = out->iv_len = 0;
	const char *what = decrypt ? "decrypt request" : "encrypt request";
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse(body, len, WORKLOAD_BODY_MAX, what, &doc, err) < 0)
		return -1;
	if (!YAJL_IS_OBJECT(doc))
		return berr_set(err, 0, "%s: expected an object", what);
	size_t cap = decrypt ? sizeof(out->data) : WORKLOAD_DATA_MAX;
	if (b64_member(doc, decrypt ? "ciphertext" : "plaintext", out->data, cap, &out->len, err) <
		0 ||
	    b64_member(doc, "initializationVector", out->iv, sizeof(out->iv), &out->iv_len, err) <
		0)
		return berr_wrap(err, "%s", what);
	if (out->iv_len == 0)
		return berr_set(err, 0, "%s: initializationVector must not be empty", what);
	*status = 200;
	return 0;
}
