#include "agent/workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/json.h"
#include "common/sas.h"
#include "common/sha256.h"

static const char *find_crlfcrlf(const char *buf, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n')
			return buf + i;
	return NULL;
}

/* "name" of /modules/<name>/genid/<genid>/sign: bounded, plain characters. */
static int path_segment(const char **p, const char *end, char *out, size_t cap)
{
	size_t n = 0;
	while (*p < end && **p != '/' && **p != '?') {
		char c = **p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		if (!ok || n + 1 >= cap)
			return -1;
		out[n++] = c;
		(*p)++;
	}
	out[n] = '\0';
	return n ? 0 : -1;
}

static int fail(int *status, int code, struct berr *err, const char *msg)
{
	*status = code;
	return berr_set(err, 0, "%s", msg);
}

int workload_parse_request(const char *buf, size_t len, struct workload_request *req, int *status,
			   struct berr *err)
{
	memset(req, 0, sizeof(*req));
	*status = 400;
	const char *hend =
	    find_crlfcrlf(buf, len < WORKLOAD_HEADER_MAX ? len : WORKLOAD_HEADER_MAX);
	if (!hend) {
		if (len >= WORKLOAD_HEADER_MAX)
			return fail(status, 431, err, "request headers too large");
		return 0;
	}
	const char *line_end = memchr(buf, '\r', (size_t)(hend - buf) + 1);
	if (!line_end)
		return fail(status, 400, err, "malformed request line");
	/* Request line: METHOD SP TARGET SP HTTP/1.x */
	const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || line_end - sp2 < 9 || strncmp(sp2 + 1, "HTTP/1.", 7))
		return fail(status, 400, err, "malformed request line");
	const char *target = sp1 + 1, *tend = sp2;
	static const char prefix[] = "/modules/";
	if ((size_t)(tend - target) < sizeof(prefix) - 1 ||
	    strncmp(target, prefix, sizeof(prefix) - 1))
		return fail(status, 404, err,
			    "not found: berth serves only /modules/<name>/genid/<genid>/sign");
	const char *p = target + sizeof(prefix) - 1;
	if (path_segment(&p, tend, req->module, sizeof(req->module)) < 0 ||
	    !module_name_valid(req->module))
		return fail(status, 400, err, "malformed module name");
	if (tend - p < 7 || strncmp(p, "/genid/", 7))
		return fail(status, 404, err,
			    "not found: berth serves only /modules/<name>/genid/<genid>/sign");
	p += 7;
	if (path_segment(&p, tend, req->genid, sizeof(req->genid)) < 0)
		return fail(status, 400, err, "malformed generation id");
	if (tend - p < 5 || strncmp(p, "/sign", 5) || (p + 5 < tend && p[5] != '?'))
		return fail(status, 404, err,
			    "not found: berth serves only /modules/<name>/genid/<genid>/sign");
	p += 5;
	if (p >= tend || !memmem(p, (size_t)(tend - p), "api-version=", 12))
		return fail(status, 400, err, "api-version is required");
	if (sp1 - buf != 4 || strncmp(buf, "POST", 4))
		return fail(status, 405, err, "method not allowed: use POST");

	/* Headers: only Content-Length matters; chunked bodies are refused. */
	long long clen = -1;
	const char *h = line_end + 2;
	while (h < hend) {
		const char *e = memchr(h, '\r', (size_t)(hend - h) + 1);
		if (!e)
			e = hend;
		size_t n = (size_t)(e - h);
		if (n > 15 && !strncasecmp(h, "content-length:", 15)) {
			char num[24];
			const char *v = h + 15;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			size_t vl = (size_t)(e - v);
			if (vl == 0 || vl >= sizeof(num) || strspn(v, "0123456789") < vl ||
			    clen >= 0)
				return fail(status, 400, err, "bad Content-Length");
			memcpy(num, v, vl);
			num[vl] = '\0';
			clen = strtoll(num, NULL, 10);
		} else if (n > 18 && !strncasecmp(h, "transfer-encoding:", 18))
			return fail(status, 411, err,
				    "chunked bodies are not accepted: send Content-Length");
		h = e + 2;
	}
	if (clen < 0)
		return fail(status, 411, err, "Content-Length is required");
	if (clen > WORKLOAD_BODY_MAX)
		return fail(status, 413, err, "body too large");
	size_t have = len - (size_t)(hend + 4 - buf);
	if (have < (size_t)clen)
		return 0;
	req->body = hend + 4;
	req->body_len = (size_t)clen;
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
	int rc = -1;
	if (!key_id || strcmp(key_id, "primary"))
		berr_set(err, 0, "sign request: keyId must be \"primary\"");
	else if (!algo || strcmp(algo, "HMACSHA256"))
		berr_set(err, 0, "sign request: algo must be \"HMACSHA256\"");
	else if (!data)
		berr_set(err, 0, "sign request: data is required");
	else {
		size_t dlen = strlen(data);
		cleanup_free unsigned char *raw = malloc(dlen + 1);
		unsigned char key[SAS_KEY_B64_MAX];
		int rlen = raw ? base64_decode(data, dlen, raw, dlen + 1) : -1;
		int klen = base64_decode(module_key_b64, strlen(module_key_b64), key, sizeof(key));
		if (rlen < 0)
			berr_set(err, 0, "sign request: data is not base64");
		else if (klen <= 0) {
			*status = 500;
			berr_set(err, 0, "module key");
		} else {
			unsigned char mac[SHA256_LEN];
			hmac_sha256(key, (size_t)klen, raw, (size_t)rlen, mac);
			if (base64_encode(mac, sizeof(mac), digest, cap) < 0) {
				*status = 500;
				berr_set(err, 0, "digest buffer too small");
			} else {
				*status = 200;
				rc = 0;
			}
		}
		explicit_bzero(key, sizeof(key));
	}
	return rc;
}
