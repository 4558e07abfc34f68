/* Twin requests from a module:
 *   $iothub/twin/GET/?$rid=<rid>                    -> res/200 with the twin
 *   $iothub/twin/PATCH/properties/reported/?$rid=   -> res/204 with $version
 * Answers go to $iothub/twin/res/<status>/?$rid=<rid> (400 with a message
 * for a patch that is not a valid JSON object, or an unknown request). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "hub/broker.h"
#include "hub/upstream.h"

#define RID_MAX 128

/* The value of "$rid" in the query after '?'; "" when absent or unusable
 * in a topic. */
static void query_rid(const char *topic, char *rid, size_t cap)
{
	rid[0] = '\0';
	const char *q = strchr(topic, '?');
	while (q && *q) {
		q++;
		size_t len = strcspn(q, "&");
		if (len > 5 && !strncmp(q, "$rid=", 5) && len - 5 < cap &&
		    !memchr(q + 5, '/', len - 5) && !memchr(q + 5, '+', len - 5) &&
		    !memchr(q + 5, '#', len - 5)) {
			memcpy(rid, q + 5, len - 5);
			rid[len - 5] = '\0';
			return;
		}
		q += len;
	}
}

/* The path between the prefix and '?', without a trailing '/'. */
static bool path_is(const char *rest, const char *want)
{
	size_t len = strcspn(rest, "?");
	if (len && rest[len - 1] == '/')
		len--;
	return strlen(want) == len && !strncmp(rest, want, len);
}

static void answer(struct client *c, int status, const char *rid, const char *extra,
		   const char *body)
{
	char topic[256];
	snprintf(topic, sizeof(topic), "$iothub/twin/res/%d/?$rid=%s%s", status, rid, extra);
	if (session_enqueue(c->session, topic, body, body ? strlen(body) : 0, 1) == 1)
		log_debug("%s: twin answer %d not sent: no subscription to $iothub/twin/res/#",
			  c->label, status);
}

static void answer_error(struct client *c, int status, const char *rid, const char *message)
{
	yajl_gen g = json_gen_new(false);
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
		     json_gen_key_int(g, "errorCode", status) == 0 &&
		     json_gen_key_str(g, "message", message) == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	cleanup_free char *body = json_gen_done_if(g, built, NULL);
	answer(c, status, rid, "", body ? body : "{}");
}

int handle_twin_request(struct client *c, const char *topic, const uint8_t *payload, size_t len)
{
	struct broker *b = c->b;
	const char *module = c->session->module;
	const char *rest = topic + strlen("$iothub/twin/");
	char rid[RID_MAX];
	query_rid(topic, rid, sizeof(rid));
	struct twin *t = twins_get(b, module);
	if (!t) {
		answer_error(c, 404, rid, "this module has no twin");
		return 0;
	}
	if (path_is(rest, "GET")) {
		size_t jlen;
		cleanup_free char *json = twin_get_json(t, &jlen);
		if (!json)
			answer_error(c, 500, rid, "out of memory");
		else
			answer(c, 200, rid, "", json);
		return 0;
	}
	if (path_is(rest, "PATCH/properties/reported")) {
		int64_t version;
		struct berr err;
		int rc =
		    twin_patch_reported(t, (const char *)payload, len, b->now_ms, &version, &err);
		if (rc < 0) {
			client_log_refusal(c, LOG_LVL_INFO, "reported properties patch refused: %s",
					   err.msg);
			answer_error(c, 400, rid, err.msg);
			return 0;
		}
		twins_changed(b, module); /* saved at the end of this loop turn */
		upstream_twin_changed(b, module);
		char extra[48];
		snprintf(extra, sizeof(extra), "&$version=%" PRId64, version);
		answer(c, 204, rid, extra, NULL);
		return 0;
	}
	client_log_refusal(c, LOG_LVL_INFO, "unknown twin request %.200s", topic);
	answer_error(c, 400, rid, "unknown twin request");
	return 0;
}
