/* HTTP/1.1 as berth's two small servers speak it (the workload API on Unix
 * sockets, the gateway's HTTPS on 443): one request read from a bounded
 * buffer by a pure parser, one JSON answer, then the connection closes.
 *
 * What clients send is taken as they send it: any Host (the C SDK sends the
 * socket path), no Content-Type (Python sends none), header names in any
 * case (the C SDK writes `content-length`), path segments percent-encoded
 * (`/modules/my%2Dmodule/...`). What is refused, with the status to answer:
 * a request line or header that is not well formed (400), header lines
 * folded over two lines (400), Transfer-Encoding (411: send Content-Length),
 * two Content-Length headers (400), a target that is not a path (400), more
 * path segments or longer ones than the parser holds (414), headers over
 * the caller's bound (431), a body over the caller's bound (413). */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/strbuf.h"

#define HTTP_SEGMENTS_MAX    8
#define HTTP_SEGMENT_MAX     255 /* bytes of one decoded path segment */
#define HTTP_API_VERSION_MAX 31

/* A header the caller wants: name set by the caller, value filled by the
 * parser (pointing into the buffer, without surrounding blanks; NULL when
 * the request has none). A wanted header sent twice is refused (400). */
struct http_header {
	const char *name;
	const char *value;
	size_t len;
};

struct http_request {
	char method[8];
	/* The path split at '/', each segment percent-decoded: "/a/b%2Fc/"
	 * gives "a", "b/c", "". */
	size_t n_segments;
	char segments[HTTP_SEGMENTS_MAX][HTTP_SEGMENT_MAX + 1];
	/* The decoded value of the query's api-version ("" when absent). */
	char api_version[HTTP_API_VERSION_MAX + 1];
	const char *body; /* into the buffer; body_len 0 without Content-Length */
	size_t body_len;
	size_t used; /* bytes of the buffer this request took */
};

struct http_limits {
	size_t header_max; /* request line and headers, with the blank line */
	size_t body_max;
};

/* Parses one request from the start of buf. Returns 1 when it is complete,
 * 0 when more bytes are needed, -1 with err and *status (the answer to
 * give) when it is refused. want (n_want entries, may be NULL) names the
 * headers to return. */
NODISCARD int http_request_parse(const char *buf, size_t len, const struct http_limits *limits,
				 struct http_request *req, struct http_header *want, size_t n_want,
				 int *status, struct berr *err);

/* True when the path is exactly these segments ("*" matches any one). */
bool http_path_is(const struct http_request *req, const char *const *segments, size_t n);

/* "OK", "Not Found", ... ("Error" for a status it does not know). */
const char *http_reason(int status);

/* Writes a whole answer into out: the status line, Content-Type:
 * application/json, Content-Length, Connection: close, the body. */
NODISCARD int http_response(struct strbuf *out, int status, const char *json, size_t len);

/* {"message":"<msg>"} as the answer's body (malloc'd; NULL without memory). */
char *http_error_json(const char *msg);

#endif
