/* The twin cache and the cloud's direct methods, as edgeHub keeps them
 * (docs/CLOUD.md): with upstream.twins every identity of the config
 * ($edgeAgent, $edgeHub and each module) keeps its connection upstream,
 * reads its twin there after every connect, takes the cloud's desired
 * patches (a $version that is not the previous one + 1 means a full GET
 * again) and passes them to the module, and sends the module's reported
 * properties up as one merge patch at a time: the difference between the
 * local reported properties and what the cloud acknowledged last (`base`,
 * saved with the twin), so patches made while offline arrive once, merged.
 * The local twin answers the module's GETs. */
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/lazy.h"
#include "common/log.h"
#include "hub/upstream_conn.h"

#define TWIN_REQUEST_MS	    30000 /* a GET or patch unanswered this long is sent again */
#define TWIN_RETRY_MS	    5000  /* after IoT Hub refused a request for now (429, 5xx) */
#define TWIN_TOPIC_MAX	    256
#define METHOD_TOPIC_PREFIX "$iothub/methods/POST/"

static const char *const subscriptions[] = {
    "$iothub/twin/res/#",
    "$iothub/twin/PATCH/properties/desired/#",
    METHOD_TOPIC_PREFIX "#",
};

/* A cloud's method call waiting for the module's answer. */
struct cloud_call {
	struct cloud_call *next;
	struct broker *b;
	char module[HUB_NAME_MAX + 1];
	char rid[UPTWIN_RID_MAX];
};

static struct cloud_call *calls;

static bool is_system(const char *module)
{
	return !strcmp(module, "$edgeAgent") || !strcmp(module, "$edgeHub");
}

/* The daemon reads the desired properties of $edgeAgent and $edgeHub (its
 * deployment) when told. */
static void notify_agent(struct broker *b, const char *module)
{
	if (!b->cfg->notify_parent || !is_system(module))
		return;
	pid_t parent = getppid();
	if (parent > 1)
		kill(parent, SIGUSR1);
}

static bool connected(const struct upconn *c)
{
	return c->mosq && (c->state == UPC_CONNECTED || c->state == UPC_RENEWING);
}

static void publish(struct upconn *c, const char *topic, const char *body)
{
	int rc = LAZY(mosquitto_publish)(c->mosq, NULL, topic, body ? (int)strlen(body) : 0, body,
					 0, false);
	if (rc != MOSQ_ERR_SUCCESS)
		log_warn("upstream %s: %s not sent: %s", c->module, topic,
			 LAZY(mosquitto_strerror)(rc));
}

static void new_rid(struct upconn *c, char *out)
{
	snprintf(out, UPTWIN_RID_MAX, "%" PRIu64, ++c->twin_rid);
}

static void send_get(struct upconn *c)
{
	char topic[TWIN_TOPIC_MAX];
	new_rid(c, c->get_rid);
	c->get_mono = c->up->b->mono_ms;
	snprintf(topic, sizeof(topic), "$iothub/twin/GET/?$rid=%s", c->get_rid);
	publish(c, topic, NULL);
}

void uptwin_connected(struct upconn *c)
{
	for (size_t i = 0; i < sizeof(subscriptions) / sizeof(*subscriptions); i++)
		LAZY(mosquitto_subscribe)(c->mosq, NULL, subscriptions[i], 0);
	uptwin_reset(c);
	send_get(c);
}

void uptwin_reset(struct upconn *c)
{
	c->twin_got = false;
	c->get_rid[0] = '\0';
	c->patch_rid[0] = '\0';
	free(c->patch_values);
	c->patch_values = NULL;
}

static int parse_base(const struct module_twin *mt, yajl_val *out, struct berr *err)
{
	const char *base = mt->base ? mt->base : "{}";
	return json_parse(base, strlen(base), TWIN_FILE_MAX, "reported base", out, err);
}

void uptwin_step(struct upconn *c)
{
	struct broker *b = c->up->b;
	if (!connected(c) || b->mono_ms < c->twin_retry_mono)
		return;
	if (c->get_rid[0] && b->mono_ms - c->get_mono > TWIN_REQUEST_MS) {
		log_warn("upstream %s: no answer to the twin GET; asking again", c->module);
		c->get_rid[0] = '\0';
	}
	if (!c->twin_got) {
		if (!c->get_rid[0])
			send_get(c);
		return;
	}
	if (c->patch_rid[0] && b->mono_ms - c->patch_mono > TWIN_REQUEST_MS) {
		log_warn("upstream %s: no answer to a reported patch; sending it again", c->module);
		c->patch_rid[0] = '\0';
	}
	struct module_twin *mt = twins_find(b, c->module);
	if (c->patch_rid[0] || !mt || !mt->twin)
		return;
	cleanup_yajl yajl_val base = NULL;
	cleanup_free char *patch = NULL;
	struct berr err;
	if (parse_base(mt, &base, &err) < 0 ||
	    twin_reported_diff(mt->twin, base, &patch, &err) < 0) {
		log_error("upstream %s: reported properties: %s", c->module, err.msg);
		return;
	}
	if (!patch)
		return;
	free(c->patch_values);
	if (!(c->patch_values = twin_reported_values(mt->twin)))
		return;
	char topic[TWIN_TOPIC_MAX];
	new_rid(c, c->patch_rid);
	c->patch_mono = b->mono_ms;
	snprintf(topic, sizeof(topic), "$iothub/twin/PATCH/properties/reported/?$rid=%s",
		 c->patch_rid);
	log_debug("upstream %s: reported patch %s: %.200s", c->module, c->patch_rid, patch);
	publish(c, topic, patch);
}

/* The value of `name=` in the query of topic ("" when absent). */
static void query_value(const char *topic, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	const char *q = strchr(topic, '?');
	size_t nlen = strlen(name);
	while (q && *q) {
		q++;
		size_t len = strcspn(q, "&");
		if (len > nlen && !strncmp(q, name, nlen) && q[nlen] == '=' &&
		    len - nlen - 1 < cap) {
			memcpy(out, q + nlen + 1, len - nlen - 1);
			out[len - nlen - 1] = '\0';
			return;
		}
		q += len;
	}
}

/* The cloud's twin: desired properties replace the local ones (the module
 * gets the difference), reported ones too, with the local changes the cloud
 * does not have yet on top (they go up next). */
static void twin_got(struct upconn *c, struct module_twin *mt, const char *body, size_t len)
{
	struct broker *b = c->up->b;
	cleanup_yajl yajl_val v = NULL, base = NULL;
	cleanup_free char *pending = NULL, *patch = NULL;
	struct berr err;
	long long dv = 0, rv = 0;
	yajl_val desired, reported;
	if (json_parse(body, len, TWIN_FILE_MAX, "twin", &v, &err) < 0 ||
	    json_get_obj(v, "desired", "twin", true, &desired, &err) < 0 ||
	    json_get_obj(v, "reported", "twin", true, &reported, &err) < 0 ||
	    json_get_int(desired, "$version", "twin.desired", true, &dv, &err) < 0 ||
	    json_get_int(reported, "$version", "twin.reported", false, &rv, &err) < 0 ||
	    parse_base(mt, &base, &err) < 0 ||
	    twin_reported_diff(mt->twin, base, &pending, &err) < 0) {
		log_error("upstream %s: the cloud's twin is not usable: %s", c->module, err.msg);
		c->twin_retry_mono = b->mono_ms + TWIN_RETRY_MS;
		return;
	}
	bool was_synced = mt->synced;
	int64_t old_version = twin_desired_version(mt->twin);
	if (twin_set_reported(mt->twin, reported, rv > 0 ? rv : 1, b->now_ms, &err) < 0 ||
	    twin_sync_desired(mt->twin, desired, dv, b->now_ms, &patch, &err) < 0) {
		log_error("upstream %s: the cloud's twin: %s", c->module, err.msg);
		c->twin_retry_mono = b->mono_ms + TWIN_RETRY_MS;
		return;
	}
	char *values = twin_reported_values(mt->twin);
	if (values) {
		free(mt->base);
		mt->base = values;
	}
	int64_t version;
	if (pending &&
	    twin_patch_reported(mt->twin, pending, strlen(pending), b->now_ms, &version, &err) < 0)
		log_error("upstream %s: reported properties made offline: %s", c->module, err.msg);
	mt->synced = true;
	twins_changed(b, c->module);
	c->twin_got = true;
	log_info("upstream %s: twin read (desired version %lld)%s", c->module, dv,
		 pending ? "; sending the reported properties made meanwhile" : "");
	if (patch)
		twins_send_desired(b, c->module, mt->twin, patch);
	if (patch || !was_synced || old_version != dv)
		notify_agent(b, c->module);
}

static void twin_answer(struct upconn *c, const char *topic, const char *body, size_t len)
{
	struct broker *b = c->up->b;
	char rid[UPTWIN_RID_MAX];
	query_value(topic, "$rid", rid, sizeof(rid));
	int status = atoi(topic + strlen("$iothub/twin/res/"));
	struct module_twin *mt = twins_find(b, c->module);
	if (!mt || !mt->twin)
		return;
	if (rid[0] && !strcmp(rid, c->get_rid)) {
		c->get_rid[0] = '\0';
		if (status == 200) {
			twin_got(c, mt, body, len);
		} else {
			log_warn("upstream %s: twin GET answered %d: %.200s", c->module, status,
				 body);
			c->twin_retry_mono = b->mono_ms + TWIN_RETRY_MS;
		}
		return;
	}
	if (!rid[0] || strcmp(rid, c->patch_rid))
		return;
	c->patch_rid[0] = '\0';
	if (status == 429 || status >= 500) {
		c->twin_retry_mono = b->mono_ms + TWIN_RETRY_MS;
		return;
	}
	if (status >= 300)
		/* Sent again it would be refused again: the cloud keeps what it has. */
		log_error("upstream %s: reported properties refused by the upstream (%d): %.200s",
			  c->module, status, body);
	free(mt->base);
	mt->base = c->patch_values;
	c->patch_values = NULL;
	twins_changed(b, c->module);
	uptwin_step(c);
}

static void desired_patch(struct upconn *c, const char *topic, const char *body, size_t len)
{
	struct broker *b = c->up->b;
	struct module_twin *mt = twins_find(b, c->module);
	if (!mt || !mt->twin || !c->twin_got)
		return; /* the GET under way brings it */
	char vtext[24];
	query_value(topic, "$version", vtext, sizeof(vtext));
	char *end;
	long long version = strtoll(vtext, &end, 10);
	int64_t have = twin_desired_version(mt->twin);
	if (!vtext[0] || *end || version != have + 1) {
		log_info("upstream %s: desired version %s after %" PRId64
			 "; reading the twin again",
			 c->module, vtext[0] ? vtext : "(none)", have);
		c->twin_got = false;
		send_get(c);
		return;
	}
	struct berr err;
	if (twin_patch_desired(mt->twin, body, len, version, b->now_ms, &err) < 0) {
		log_error("upstream %s: desired patch %lld: %s; reading the twin again", c->module,
			  version, err.msg);
		c->twin_got = false;
		send_get(c);
		return;
	}
	twins_changed(b, c->module);
	log_info("upstream %s: desired properties version %lld", c->module, version);
	twins_send_desired(b, c->module, mt->twin, body);
	notify_agent(b, c->module);
}

static void call_done(void *ctx, int status, const char *payload, const char *error)
{
	struct cloud_call *call = ctx, **cp = &calls;
	while (*cp && *cp != call)
		cp = &(*cp)->next;
	if (*cp)
		*cp = call->next;
	struct upconn *c =
	    call->b->upstream ? upstream_conn_find(call->b->upstream, call->module) : NULL;
	if (c && connected(c)) {
		char topic[TWIN_TOPIC_MAX];
		snprintf(topic, sizeof(topic), "$iothub/methods/res/%d/?$rid=%s", status,
			 call->rid);
		cleanup_free char *text = NULL;
		if (!payload) {
			yajl_gen g = json_gen_new(false);
			bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
				     json_gen_key_str(g, "message", error ? error : "") == 0 &&
				     yajl_gen_map_close(g) == yajl_gen_status_ok;
			text = json_gen_done_if(g, built, NULL);
		}
		publish(c, topic, payload ? payload : text);
	} else {
		log_warn("method answer %d for %s not sent: its connection upstream is gone",
			 status, call->module);
	}
	free(call);
}

static void method_request(struct upconn *c, const char *topic, const char *body, size_t len)
{
	struct broker *b = c->up->b;
	const char *name = topic + strlen(METHOD_TOPIC_PREFIX);
	size_t nlen = strcspn(name, "/?");
	struct cloud_call *call = calloc(1, sizeof(*call));
	if (!call)
		return;
	call->b = b;
	snprintf(call->module, sizeof(call->module), "%s", c->module);
	query_value(topic, "$rid", call->rid, sizeof(call->rid));
	char method[HUB_NAME_MAX + 1];
	if (!call->rid[0] || nlen == 0 || nlen >= sizeof(method)) {
		log_warn("upstream %s: method request %.200s without a usable name or $rid",
			 c->module, topic);
		free(call);
		return;
	}
	memcpy(method, name, nlen);
	method[nlen] = '\0';
	cleanup_yajl yajl_val payload = NULL;
	struct berr err;
	if (len && json_parse(body, len, METHOD_PAYLOAD_MAX, "method payload", &payload, &err) < 0)
		payload = NULL; /* IoT Hub sends JSON; anything else goes on as null */
	call->next = calls;
	calls = call;
	log_info("upstream %s: method %s from the cloud (request %s)", c->module, method,
		 call->rid);
	methods_call(b, c->module, method, payload, b->cfg->upstream.method_timeout_ms,
		     (struct method_waiter){call_done, call});
}

void uptwin_message(struct upconn *c, const char *topic, const void *payload, size_t len)
{
	if (len > TWIN_FILE_MAX) {
		log_warn("upstream %s: a message of %zu bytes on %.200s is over %d; ignored",
			 c->module, len, topic, TWIN_FILE_MAX);
		return;
	}
	/* Bodies are NUL-terminated for the JSON parser and log lines. */
	cleanup_free char *body = malloc(len + 1);
	if (!body)
		return;
	memcpy(body, payload, len);
	body[len] = '\0';
	if (!strncmp(topic, "$iothub/twin/res/", strlen("$iothub/twin/res/")))
		twin_answer(c, topic, body, len);
	else if (!strncmp(topic, "$iothub/twin/PATCH/properties/desired/",
			  strlen("$iothub/twin/PATCH/properties/desired/")))
		desired_patch(c, topic, body, len);
	else if (!strncmp(topic, METHOD_TOPIC_PREFIX, strlen(METHOD_TOPIC_PREFIX)))
		method_request(c, topic, body, len);
	else
		log_debug("upstream %s: ignoring a message on %.200s", c->module, topic);
}

void uptwin_forget_calls(struct broker *b)
{
	while (calls) {
		struct cloud_call *call = calls;
		calls = call->next;
		methods_forget(b, call);
		free(call);
	}
}

void upstream_twin_changed(struct broker *b, const char *module)
{
	struct upconn *c =
	    b->upstream && twins_from_cloud(b) ? upstream_conn_find(b->upstream, module) : NULL;
	if (c)
		uptwin_step(c);
}

void upstream_twin_client(struct broker *b, const char *client_id, bool is_connected)
{
	if (!twins_from_cloud(b))
		return;
	struct module_twin *mt = twins_find(b, "$edgeHub");
	if (!mt || !mt->twin)
		return;
	char when[32];
	twin_format_time(b->now_ms, when);
	yajl_gen g = json_gen_new(false);
	cleanup_free char *patch = NULL;
	bool built =
	    g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_str(g, "clients") == 0 &&
	    yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_str(g, client_id) == 0 &&
	    yajl_gen_map_open(g) == yajl_gen_status_ok &&
	    json_gen_key_str(g, "status", is_connected ? "Connected" : "Disconnected") == 0 &&
	    json_gen_key_str(g, is_connected ? "lastConnectedTimeUtc" : "lastDisconnectedTimeUtc",
			     when) == 0 &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok;
	patch = json_gen_done_if(g, built, NULL);
	int64_t version;
	struct berr err;
	if (!patch ||
	    twin_patch_reported(mt->twin, patch, strlen(patch), b->now_ms, &version, &err) < 0)
		return;
	twins_changed(b, "$edgeHub");
	upstream_twin_changed(b, "$edgeHub");
}
