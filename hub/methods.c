/* Direct methods: a call (from the control socket, `berth invoke`, or from
 * another module through the gateway's HTTPS) becomes a PUBLISH to
 * $iothub/methods/POST/<method>/?$rid=<rid> on the module; its answer on
 * $iothub/methods/res/<status>/?$rid=<rid> (or the deadline) goes to
 * whoever waits. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "hub/broker.h"
#include "hub/control.h"
#include "common/strbuf.h"

#define METHOD_TIMEOUT_DEFAULT_MS 30000
#define METHOD_TIMEOUT_MIN_MS	  100
#define METHOD_TIMEOUT_MAX_MS	  300000
#define METHOD_NAME_MAX		  128

struct method_call {
	struct method_call *next;
	char rid[24];
	char *module;
	char *method;
	struct method_waiter waiter;
	int64_t deadline_mono;
	long long timeout_ms;
};

static void fail(const struct method_waiter *w, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(const struct method_waiter *w, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->done(w->ctx, status, NULL, msg);
}

static bool method_name_ok(const char *m)
{
	size_t len = strnlen(m, METHOD_NAME_MAX + 1);
	return len > 0 && len <= METHOD_NAME_MAX && !strpbrk(m, "/+#?") && mqtt_utf8_valid(m, len);
}

static void call_free(struct method_call *call)
{
	free(call->module);
	free(call->method);
	free(call);
}

void methods_call(struct broker *b, const char *module, const char *method, yajl_val payload,
		  long long timeout_ms, struct method_waiter w)
{
	if (!method_name_ok(method)) {
		fail(&w, 400, "\"%.64s\" is not a valid method name", method);
		return;
	}
	if (timeout_ms < METHOD_TIMEOUT_MIN_MS || timeout_ms > METHOD_TIMEOUT_MAX_MS) {
		fail(&w, 400, "the timeout must be %d..%d ms", METHOD_TIMEOUT_MIN_MS,
		     METHOD_TIMEOUT_MAX_MS);
		return;
	}
	if (!hub_config_module(b->cfg, module)) {
		fail(&w, 404, "module %.128s is not deployed", module);
		return;
	}
	char client_id[2 * HUB_NAME_MAX + 2];
	snprintf(client_id, sizeof(client_id), "%s/%s", b->cfg->device_id, module);
	struct session *s = session_find(b, client_id);
	if (!s || !s->client || s->client->state != CLIENT_CONNECTED) {
		fail(&w, 404, "module %s is not connected", module);
		return;
	}
	struct method_call *call = calloc(1, sizeof(*call));
	if (!call || !(call->module = strdup(module)) || !(call->method = strdup(method))) {
		if (call)
			call_free(call);
		fail(&w, 500, "out of memory");
		return;
	}
	snprintf(call->rid, sizeof(call->rid), "%" PRIx64, b->next_rid++);
	char topic[64 + METHOD_NAME_MAX + sizeof(call->rid)];
	snprintf(topic, sizeof(topic), "$iothub/methods/POST/%s/?$rid=%s", method, call->rid);
	if (session_granted_qos(s, topic, strlen(topic)) < 0) {
		call_free(call);
		fail(&w, 404, "module %s has not subscribed to $iothub/methods/POST/#", module);
		return;
	}
	yajl_gen g = json_gen_new(false);
	size_t len = 0;
	cleanup_free char *body = NULL;
	body = json_gen_done_if(g, g && json_gen_val(g, payload) == 0, &len);
	if (!body) {
		call_free(call);
		fail(&w, 500, "cannot encode the payload");
		return;
	}
	if (len > METHOD_PAYLOAD_MAX) {
		call_free(call);
		fail(&w, 413, "payload of %zu bytes is over the limit of %d", len,
		     METHOD_PAYLOAD_MAX);
		return;
	}
	call->waiter = w;
	call->timeout_ms = timeout_ms;
	call->deadline_mono = b->mono_ms + timeout_ms;
	call->next = b->calls;
	b->calls = call;
	log_info("method %s on %s (request %s)", method, module, call->rid);
	HUB_COUNT(b, DIRECT_METHODS, "", module);
	if (session_enqueue(s, topic, body, len, 0) != 0) {
		b->calls = call->next;
		call_free(call);
		fail(&w, 503, "module %s cannot take the request now", module);
	}
}

/* The control socket's answer: {"status":n,"payload":...} or
 * {"status":n,"error":"..."}. */
static void control_done(void *ctx, int status, const char *payload, const char *error)
{
	struct control_conn *cc = ctx;
	struct strbuf out = STRBUF_INIT;
	int rc;
	if (payload) {
		rc = strbuf_printf(&out, "{\"status\":%d,\"payload\":%s}", status, payload);
	} else {
		yajl_gen g = json_gen_new(false);
		bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
			     json_gen_key_int(g, "status", status) == 0 &&
			     json_gen_key_str(g, "error", error ? error : "") == 0 &&
			     yajl_gen_map_close(g) == yajl_gen_status_ok;
		cleanup_free char *text = json_gen_done_if(g, built, NULL);
		rc = text ? strbuf_puts(&out, text) : -1;
	}
	control_reply(cc, rc == 0 ? out.buf : "{\"status\":500}");
	strbuf_release(&out);
}

void methods_invoke(struct broker *b, struct control_conn *cc, yajl_val req)
{
	const char *module = json_str(json_get(req, "module"));
	const char *method = json_str(json_get(req, "method"));
	yajl_val payload = json_get(req, "payload");
	long long timeout_ms = METHOD_TIMEOUT_DEFAULT_MS;
	yajl_val tv = json_get(req, "timeout_ms");
	struct method_waiter w = {control_done, cc};
	if (!module || !method) {
		fail(&w, 400, "invoke needs \"module\" and \"method\"");
		return;
	}
	if (tv) {
		if (!YAJL_IS_INTEGER(tv)) {
			fail(&w, 400, "timeout_ms must be %d..%d", METHOD_TIMEOUT_MIN_MS,
			     METHOD_TIMEOUT_MAX_MS);
			return;
		}
		timeout_ms = YAJL_GET_INTEGER(tv);
	}
	methods_call(b, module, method, payload, timeout_ms, w);
}

/* Answers a call with the module's status and payload: JSON as it is, any
 * other payload as a JSON string. */
static void reply_result(struct method_call *call, int status, const uint8_t *payload, size_t len)
{
	yajl_val v = NULL;
	struct berr err;
	if (len && json_parse((const char *)payload, len, METHOD_PAYLOAD_MAX, "method answer", &v,
			      &err) < 0)
		v = NULL;
	yajl_gen g = json_gen_new(false);
	cleanup_free char *out = NULL;
	int rc = g ? 0 : -1;
	if (rc == 0) {
		if (v || !len)
			rc = json_gen_val(g, v);
		else if (mqtt_utf8_valid((const char *)payload, len))
			rc = yajl_gen_string(g, payload, len) == yajl_gen_status_ok ? 0 : -1;
		else
			rc = yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
	}
	out = json_gen_done_if(g, rc == 0, NULL);
	yajl_tree_free(v);
	if (out)
		call->waiter.done(call->waiter.ctx, status, out, NULL);
	else
		fail(&call->waiter, 500, "cannot encode the answer of %s", call->module);
}

int handle_method_response(struct client *c, const char *topic, const uint8_t *payload, size_t len)
{
	struct broker *b = c->b;
	const char *p = topic + strlen("$iothub/methods/res/");
	char *end;
	long status = strtol(p, &end, 10);
	const char *rid = strstr(topic, "$rid=");
	if (end == p || *end != '/' || !rid) {
		client_log_refusal(c, LOG_LVL_INFO, "method answer on %.200s has no status or $rid",
				   topic);
		return 0;
	}
	rid += 5;
	size_t rid_len = strcspn(rid, "&");
	for (struct method_call **cp = &b->calls; *cp; cp = &(*cp)->next) {
		struct method_call *call = *cp;
		if (strlen(call->rid) != rid_len || strncmp(call->rid, rid, rid_len) ||
		    strcmp(call->module, c->session->module))
			continue;
		*cp = call->next;
		log_info("method %s on %s answered %ld", call->method, call->module, status);
		reply_result(call, (int)status, payload, len);
		call_free(call);
		return 0;
	}
	log_debug("%s: answer to unknown or expired method request %.*s", c->label, (int)rid_len,
		  rid);
	return 0;
}

void methods_expire(struct broker *b)
{
	struct method_call **cp = &b->calls;
	while (*cp) {
		struct method_call *call = *cp;
		if (b->mono_ms < call->deadline_mono) {
			cp = &call->next;
			continue;
		}
		*cp = call->next;
		log_warn("method %s on %s: no answer within %lld ms", call->method, call->module,
			 call->timeout_ms);
		fail(&call->waiter, 504, "module %s did not answer method %s within %lld ms",
		     call->module, call->method, call->timeout_ms);
		call_free(call);
	}
}

void methods_forget(struct broker *b, void *ctx)
{
	struct method_call **cp = &b->calls;
	while (*cp) {
		struct method_call *call = *cp;
		if (call->waiter.ctx == ctx) {
			*cp = call->next;
			call_free(call);
		} else {
			cp = &call->next;
		}
	}
}

void methods_free(struct broker *b)
{
	while (b->calls) {
		struct method_call *call = b->calls;
		b->calls = call->next;
		call_free(call);
	}
}
