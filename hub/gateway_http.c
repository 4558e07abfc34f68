/* The gateway's HTTPS server in the hub's epoll loop: module-to-module
 * direct methods (hub/gateway_http.h), answered through methods.c as
 * `berth invoke` is. */
#include "hub/gateway_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "hub/broker.h"

#define GATEWAY_HTTP_CONNECTIONS_MAX 64
#define GATEWAY_HTTP_REQUEST_MS	     10000 /* to send the whole request, handshake included */
#define GATEWAY_HTTP_ANSWER_MS	     5000  /* to take the answer once it is ready */
#define READ_CHUNK		     16384

void gateway_method_request_clear(struct gateway_method_request *req)
{
	if (req->body)
		yajl_tree_free(req->body);
	explicit_bzero(req->token, sizeof(req->token));
	memset(req, 0, sizeof(*req));
}

static int refuse(int *status, int code, struct berr *err, const char *msg)
{
	*status = code;
	return berr_set(err, 0, "%s", msg);
}

/* "responseTimeoutInSeconds" (or the C SDK's "timeout"): a whole number of
 * seconds, 1 to 300; absent: 30. */
static int body_timeout(yajl_val body, int *out, int *status, struct berr *err)
{
	yajl_val t = json_get(body, "responseTimeoutInSeconds");
	if (!t)
		t = json_get(body, "timeout");
	*out = GATEWAY_METHOD_TIMEOUT_DEFAULT;
	if (!t || YAJL_IS_NULL(t))
		return 0;
	if (!YAJL_IS_INTEGER(t) || YAJL_GET_INTEGER(t) < 0 ||
	    YAJL_GET_INTEGER(t) > GATEWAY_METHOD_TIMEOUT_MAX)
		return refuse(status, 400, err,
			      "responseTimeoutInSeconds must be a whole number from 0 to 300");
	*out = YAJL_GET_INTEGER(t) ? (int)YAJL_GET_INTEGER(t) : GATEWAY_METHOD_TIMEOUT_DEFAULT;
	return 0;
}

int gateway_http_parse(const char *buf, size_t len, struct gateway_method_request *req, int *status,
		       struct berr *err)
{
	memset(req, 0, sizeof(*req));
	static const struct http_limits limits = {GATEWAY_HTTP_HEADER_MAX, GATEWAY_HTTP_BODY_MAX};
	struct http_request h;
	struct http_header want[] = {{"authorization", NULL, 0}, {"x-ms-edge-moduleid", NULL, 0}};
	int rc = http_request_parse(buf, len, &limits, &h, want, ARRAY_SIZE(want), status, err);
	if (rc <= 0)
		return rc;
	static const char *const path[] = {"twins", "*", "modules", "*", "methods"};
	if (!http_path_is(&h, path, ARRAY_SIZE(path)))
		return refuse(status, 404, err,
			      "not found: the gateway serves POST "
			      "/twins/<device>/modules/<module>/methods");
	if (strcmp(h.method, "POST"))
		return refuse(status, 405, err, "method not allowed: use POST");
	if (!hub_name_copy(h.segments[1], strlen(h.segments[1]), req->device,
			   sizeof(req->device)) ||
	    !hub_name_copy(h.segments[3], strlen(h.segments[3]), req->module, sizeof(req->module)))
		return refuse(status, 400, err, "malformed device or module name");
	const char *id = want[1].value;
	const char *slash = id ? memchr(id, '/', want[1].len) : NULL;
	if (!slash ||
	    !hub_name_copy(id, (size_t)(slash - id), req->caller_device,
			   sizeof(req->caller_device)) ||
	    !hub_name_copy(slash + 1, want[1].len - (size_t)(slash + 1 - id), req->caller_module,
			   sizeof(req->caller_module)))
		return refuse(status, 401, err,
			      "x-ms-edge-moduleId must name the caller as <device>/<module>");
	if (!want[0].value || want[0].len == 0 || want[0].len > SAS_TOKEN_MAX ||
	    memchr(want[0].value, '\0', want[0].len))
		return refuse(status, 401, err, "Authorization must carry the caller's SAS token");
	memcpy(req->token, want[0].value, want[0].len);
	req->token[want[0].len] = '\0';
	if (json_parse(h.body, h.body_len, GATEWAY_HTTP_BODY_MAX, "method request", &req->body,
		       err) < 0) {
		*status = 400;
		return -1;
	}
	const char *name = json_str(json_get(req->body, "methodName"));
	if (!YAJL_IS_OBJECT(req->body) || !name || !name[0] || strlen(name) >= sizeof(req->method))
		return refuse(status, 400, err,
			      "the body must be {\"methodName\": ..., \"payload\": ...} with a "
			      "method name of at most 128 characters");
	memcpy(req->method, name, strlen(name) + 1);
	req->payload = json_get(req->body, "payload");
	if (body_timeout(req->body, &req->timeout_secs, status, err) < 0)
		return -1;
	*status = 200;
	return 1;
}

struct gateway_http {
	struct hub_io io;
	struct broker *b;
	struct gateway_http *next;
	void *tls; /* SSL * */
	bool tls_ready;
	bool want_write;
	bool waiting; /* a method call answers it */
	bool closed;
	char *in;
	size_t in_len, in_cap;
	struct strbuf out;
	size_t off;
	int64_t deadline_mono;
	char peer[64];
};

static void conn_close(struct gateway_http *h, const char *why)
{
	if (h->closed)
		return;
	if (why)
		log_info("gateway https %s: %s; connection closed", h->peer, why);
	h->closed = true;
	if (h->waiting)
		methods_forget(h->b, h);
	broker_unwatch(h->b, &h->io);
	tls_session_free(h->tls);
	h->tls = NULL;
	close(h->io.fd);
	h->io.fd = -1;
	h->b->n_gateway_http--;
}

static void watch(struct gateway_http *h)
{
	uint32_t ev = h->want_write || h->off < h->out.len ? EPOLLOUT : EPOLLIN;
	struct epoll_event e = {.events = ev, .data.ptr = &h->io};
	epoll_ctl(h->b->epfd, EPOLL_CTL_MOD, h->io.fd, &e);
}

static void flush(struct gateway_http *h)
{
	while (!h->closed && h->off < h->out.len) {
		ssize_t n =
		    tls_write(h->tls, h->out.buf + h->off, h->out.len - h->off, &h->want_write);
		if (n == -2) {
			watch(h);
			return;
		}
		if (n <= 0) {
			conn_close(h, "write failed");
			return;
		}
		h->off += (size_t)n;
	}
	if (!h->closed) {
		tls_session_shutdown(h->tls);
		conn_close(h, NULL);
	}
}

static void answer(struct gateway_http *h, int http_status, const char *json)
{
	strbuf_reset(&h->out);
	h->off = 0;
	if (h->waiting) /* answered otherwise: the call's answer has nobody to go to */
		methods_forget(h->b, h);
	h->waiting = false;
	h->deadline_mono = h->b->mono_ms + GATEWAY_HTTP_ANSWER_MS;
	if (http_response(&h->out, http_status, json, strlen(json)) < 0) {
		conn_close(h, "out of memory");
		return;
	}
	flush(h);
}

static void answer_error(struct gateway_http *h, int status, const char *msg)
{
	yajl_gen g = json_gen_new(false);
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
		     json_gen_key_int(g, "status", status) == 0 &&
		     json_gen_str(g, "payload") == 0 && yajl_gen_null(g) == yajl_gen_status_ok &&
		     json_gen_key_str(g, "message", msg) == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	cleanup_free char *out = json_gen_done_if(g, built, NULL);
	answer(h, status >= 400 && status <= 599 ? status : 500,
	       out ? out : "{\"status\":500,\"payload\":null}");
}

static void method_done(void *ctx, int status, const char *payload, const char *error)
{
	struct gateway_http *h = ctx;
	if (h->closed)
		return;
	if (!payload) {
		answer_error(h, status, error ? error : "method failed");
		return;
	}
	struct strbuf body = STRBUF_INIT;
	if (strbuf_printf(&body, "{\"status\":%d,\"payload\":%s}", status, payload) < 0)
		answer_error(h, 500, "out of memory");
	else
		answer(h, 200, body.buf);
	strbuf_release(&body);
}

/* The caller is the module x-ms-edge-moduleId names, proven by a SAS token
 * for its identity; the target must be on this device. */
static void serve(struct gateway_http *h, struct gateway_method_request *req)
{
	struct broker *b = h->b;
	char msg[512];
	if (strcmp(req->caller_device, b->cfg->device_id)) {
		answer_error(h, 401, "x-ms-edge-moduleId names another device");
		return;
	}
	const struct hub_module *caller = hub_config_module(b->cfg, req->caller_module);
	char resource[SAS_RESOURCE_MAX];
	struct berr err;
	if (!caller ||
	    sas_resource(b->cfg->hostname, b->cfg->device_id, caller->name, resource,
			 sizeof(resource)) < 0 ||
	    sas_token_verify(req->token, caller->key, resource, b->now_ms / 1000, &err) < 0) {
		snprintf(msg, sizeof(msg), "module %s: %s", req->caller_module,
			 caller ? err.msg : "not deployed");
		log_warn("gateway https %s: method %s on %s refused: %s", h->peer, req->method,
			 req->module, msg);
		answer_error(h, 401, "unauthorized: the token does not verify for the caller");
		return;
	}
	if (strcmp(req->device, b->cfg->device_id)) {
		snprintf(msg, sizeof(msg), "device %s is not this device (%s)", req->device,
			 b->cfg->device_id);
		answer_error(h, 404, msg);
		return;
	}
	log_info("gateway https: module %s calls method %s on %s", caller->name, req->method,
		 req->module);
	h->waiting = true;
	h->deadline_mono = b->mono_ms + (int64_t)req->timeout_secs * 1000 + GATEWAY_HTTP_ANSWER_MS;
	struct method_waiter w = {method_done, h};
	methods_call(b, req->module, req->method, req->payload, (long long)req->timeout_secs * 1000,
		     w);
}

static void on_input(struct gateway_http *h)
{
	for (;;) {
		if (h->in_cap - h->in_len < READ_CHUNK) {
			size_t cap = h->in_len + READ_CHUNK;
			size_t max = GATEWAY_HTTP_HEADER_MAX + GATEWAY_HTTP_BODY_MAX + READ_CHUNK;
			char *p = cap <= max ? realloc(h->in, cap) : NULL;
			if (!p) {
				answer_error(h, 413, "request too large");
				return;
			}
			h->in = p;
			h->in_cap = cap;
		}
		ssize_t n =
		    tls_read(h->tls, h->in + h->in_len, h->in_cap - h->in_len, &h->want_write);
		if (n == -2)
			break;
		if (n <= 0) {
			conn_close(h, n == 0 ? NULL : "read failed");
			return;
		}
		h->in_len += (size_t)n;
	}
	struct gateway_method_request req;
	int status;
	struct berr err;
	int rc = gateway_http_parse(h->in, h->in_len, &req, &status, &err);
	if (rc < 0) {
		log_info("gateway https %s: request refused (%d): %s", h->peer, status, err.msg);
		answer_error(h, status, err.msg);
	} else if (rc > 0) {
		free(h->in);
		h->in = NULL;
		h->in_len = h->in_cap = 0;
		serve(h, &req);
	}
	gateway_method_request_clear(&req);
	if (!h->closed)
		watch(h);
}

static void on_event(struct hub_io *io, uint32_t events)
{
	struct gateway_http *h = (struct gateway_http *)io;
	if (h->closed)
		return;
	if (!h->tls_ready) {
		struct berr err;
		int rc = tls_handshake(h->tls, &h->want_write, &err);
		if (rc < 0) {
			conn_close(h, err.msg);
			return;
		}
		if (rc > 0) {
			watch(h);
			return;
		}
		h->tls_ready = true;
		h->want_write = false;
	}
	if (h->off < h->out.len) {
		flush(h);
		return;
	}
	if (h->waiting) {
		/* Only a close is expected while the method runs. */
		char c;
		ssize_t n = tls_read(h->tls, &c, 1, &h->want_write);
		if (n == 0 || n == -1)
			conn_close(h, "closed by the caller before the method answered");
		else if (n > 0)
			answer_error(h, 400, "one request per connection");
		return;
	}
	on_input(h);
}

void gateway_http_accept(struct broker *b, int fd, void *tls, const char *peer)
{
	if (b->n_gateway_http >= GATEWAY_HTTP_CONNECTIONS_MAX) {
		log_warn("gateway https: refusing %s: %d connections already open", peer,
			 GATEWAY_HTTP_CONNECTIONS_MAX);
		tls_session_free(tls);
		close(fd);
		return;
	}
	struct gateway_http *h = calloc(1, sizeof(*h));
	struct berr err;
	if (!h) {
		tls_session_free(tls);
		close(fd);
		return;
	}
	h->io.fd = fd;
	h->io.on_event = on_event;
	h->b = b;
	h->tls = tls;
	h->deadline_mono = b->mono_ms + GATEWAY_HTTP_REQUEST_MS;
	snprintf(h->peer, sizeof(h->peer), "%s", peer);
	if (broker_watch(b, &h->io, EPOLLIN, &err) < 0) {
		log_error("gateway https %s: %s", peer, err.msg);
		tls_session_free(tls);
		close(fd);
		free(h);
		return;
	}
	h->next = b->gateway_http;
	b->gateway_http = h;
	b->n_gateway_http++;
}

void gateway_http_tick(struct broker *b)
{
	for (struct gateway_http *h = b->gateway_http; h; h = h->next) {
		if (h->closed || b->mono_ms < h->deadline_mono)
			continue;
		if (h->waiting || h->off < h->out.len || !h->tls_ready)
			conn_close(h, "too slow");
		else
			answer_error(h, 408, "no complete request in time");
	}
}

void gateway_http_free_closed(struct broker *b)
{
	struct gateway_http **hp = &b->gateway_http;
	while (*hp) {
		struct gateway_http *h = *hp;
		if (!h->closed) {
			hp = &h->next;
			continue;
		}
		*hp = h->next;
		free(h->in);
		strbuf_release(&h->out);
		free(h);
	}
}

void gateway_http_close_all(struct broker *b)
{
	for (struct gateway_http *h = b->gateway_http; h; h = h->next)
		conn_close(h, NULL);
	gateway_http_free_closed(b);
}
