#include "common/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/encoding.h"
#include "common/json.h"

static int refuse(int *status, int code, struct berr *err, const char *msg)
{
	*status = code;
	return berr_set(err, 0, "%s", msg);
}

static const char *find_blank_line(const char *buf, size_t len)
{
	const char *p = buf;
	while (len >= 4) {
		const char *cr = memchr(p, '\r', len - 3);
		if (!cr)
			return NULL;
		if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
			return cr;
		len -= (size_t)(cr + 1 - p);
		p = cr + 1;
	}
	return NULL;
}

/* RFC 9110 token characters, for methods and header names. */
static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse_target(const char *t, size_t len, struct http_request *req, int *status,
			struct berr *err)
{
	if (len == 0 || t[0] != '/')
		return refuse(status, 400, err, "the request target must be a path");
	const char *q = memchr(t, '?', len);
	size_t plen = q ? (size_t)(q - t) : len;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f || t[i] == '#')
			return refuse(status, 400, err,
				      "a character not allowed in the request target");
	/* Segments after the leading '/'. */
	size_t i = 1;
	for (;;) {
		const char *seg = t + i;
		const char *slash = memchr(seg, '/', plen - i);
		size_t n = slash ? (size_t)(slash - seg) : plen - i;
		if (req->n_segments == HTTP_SEGMENTS_MAX)
			return refuse(status, 414, err, "too many path segments");
		char *out = req->segments[req->n_segments];
		if (n > 3 * HTTP_SEGMENT_MAX)
			return refuse(status, 414, err, "a path segment is too long");
		if (url_decode(seg, n, out, HTTP_SEGMENT_MAX + 1, false) < 0)
			return refuse(status, n > HTTP_SEGMENT_MAX ? 414 : 400, err,
				      "a path segment is too long or badly percent-encoded");
		req->n_segments++;
		if (!slash)
			break;
		i += n + 1;
	}
	/* The query: only api-version is read; other parameters are ignored. */
	if (q) {
		const char *p = q + 1, *end = t + len;
		while (p < end) {
			const char *amp = memchr(p, '&', (size_t)(end - p));
			size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
			if (n >= 12 && !memcmp(p, "api-version=", 12)) {
				if (req->api_version[0])
					return refuse(status, 400, err, "api-version given twice");
				if (url_decode(p + 12, n - 12, req->api_version,
					       sizeof(req->api_version), true) < 0)
					return refuse(status, 400, err,
						      "api-version is too long or badly encoded");
			}
			p += n + 1;
		}
	}
	return 0;
}

static bool header_is(const char *h, size_t n, const char *name, const char **value)
{
	size_t nl = strlen(name);
	if (n <= nl || h[nl] != ':' || strncasecmp(h, name, nl))
		return false;
	*value = h + nl + 1;
	return true;
}

int http_request_parse(const char *buf, size_t len, const struct http_limits *limits,
		       struct http_request *req, struct http_header *want, size_t n_want,
		       int *status, struct berr *err)
{
	memset(req, 0, sizeof(*req));
	for (size_t i = 0; i < n_want; i++) {
		want[i].value = NULL;
		want[i].len = 0;
	}
	*status = 400;
	const char *hend =
	    find_blank_line(buf, len < limits->header_max ? len : limits->header_max);
	if (!hend) {
		if (len >= limits->header_max)
			return refuse(status, 431, err, "request headers too large");
		return 0;
	}
	const char *line_end = memchr(buf, '\r', (size_t)(hend - buf) + 1);
	if (line_end[1] != '\n')
		return refuse(status, 400, err, "malformed request line");
	/* METHOD SP TARGET SP HTTP/1.x */
	const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == buf || (size_t)(sp1 - buf) >= sizeof(req->method) ||
	    line_end - sp2 != 9 || strncmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return refuse(status, 400, err, "malformed request line");
	for (const char *c = buf; c < sp1; c++)
		if (!is_tchar(*c))
			return refuse(status, 400, err, "malformed request line");
	memcpy(req->method, buf, (size_t)(sp1 - buf));
	if (parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), req, status, err) < 0)
		return -1;

	long long clen = -1;
	const char *h = line_end + 2;
	while (h < hend + 2) {
		const char *e = memchr(h, '\r', (size_t)(hend + 2 - h));
		if (!e || e[1] != '\n')
			return refuse(status, 400, err, "malformed header line");
		size_t n = (size_t)(e - h);
		const char *colon = memchr(h, ':', n);
		if (n && (h[0] == ' ' || h[0] == '\t'))
			return refuse(status, 400, err, "folded header lines are not accepted");
		if (!colon || colon == h)
			return refuse(status, 400, err, "malformed header line");
		for (const char *c = h; c < colon; c++)
			if (!is_tchar(*c))
				return refuse(status, 400, err, "malformed header name");
		for (const char *c = colon + 1; c < e; c++)
			if ((unsigned char)*c < ' ' && *c != '\t')
				return refuse(status, 400, err, "a control character in a header");
		const char *v;
		if (header_is(h, n, "content-length", &v)) {
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = e;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t vl = (size_t)(ve - v);
			if (vl == 0 || vl > 18 || clen >= 0)
				return refuse(status, 400, err, "bad Content-Length");
			clen = 0;
			for (const char *c = v; c < ve; c++) {
				if (*c < '0' || *c > '9')
					return refuse(status, 400, err, "bad Content-Length");
				clen = clen * 10 + (*c - '0');
			}
		} else if (header_is(h, n, "transfer-encoding", &v)) {
			return refuse(status, 411, err,
				      "Transfer-Encoding is not accepted: send Content-Length");
		}
		for (size_t i = 0; i < n_want; i++) {
			if (!header_is(h, n, want[i].name, &v))
				continue;
			if (want[i].value)
				return refuse(status, 400, err, "a header was sent twice");
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = e;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			want[i].value = v;
			want[i].len = (size_t)(ve - v);
		}
		h = e + 2;
	}
	if (clen > (long long)limits->body_max)
		return refuse(status, 413, err, "request body too large");
	size_t head = (size_t)(hend + 4 - buf);
	size_t blen = clen > 0 ? (size_t)clen : 0;
	if (len - head < blen)
		return 0;
	req->body = hend + 4;
	req->body_len = blen;
	req->used = head + blen;
	*status = 200;
	return 1;
}

bool http_path_is(const struct http_request *req, const char *const *segments, size_t n)
{
	if (req->n_segments != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(segments[i], "*") && strcmp(segments[i], req->segments[i]))
			return false;
	return true;
}

const char *http_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {204, "No Content"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {411, "Length Required"},
	    {413, "Payload Too Large"},
	    {414, "URI Too Long"},
	    {431, "Request Header Fields Too Large"},
	    {500, "Internal Server Error"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Error";
}

int http_response(struct strbuf *out, int status, const char *json, size_t len)
{
	if (strbuf_printf(out,
			  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  status, http_reason(status), len) < 0 ||
	    strbuf_append(out, json, len) < 0)
		return -1;
	return 0;
}

char *http_error_json(const char *msg)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	char *out = NULL;
	if (yajl_gen_map_open(g) == yajl_gen_status_ok &&
	    json_gen_key_str(g, "message", msg) == 0 && yajl_gen_map_close(g) == yajl_gen_status_ok)
		out = json_gen_done(g, NULL);
	return out;
}
