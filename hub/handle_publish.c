/* PUBLISH from a module: access control, then telemetry into the routes
 * (PUBACK once the store owns the message), or a twin request, or a direct
 * method's answer. QoS 2 is refused as IoT Hub refuses it. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/broker.h"

/* A request handled on the spot still answers in order behind any PUBACK
 * that waits for the store. */
static int ack_now(struct client *c, const struct mqtt_publish *p)
{
	if (p->qos == 0 || c->state == CLIENT_CLOSED)
		return c->state == CLIENT_CLOSED ? -1 : 0;
	struct pending_ack *a = pending_ack_new(c, p->packet_id);
	if (!a) {
		client_close(c, LOG_LVL_ERROR, true, "out of memory");
		return -1;
	}
	a->done = true;
	pending_acks_flush(c);
	return c->state == CLIENT_CLOSED ? -1 : 0;
}

/* Log lines show at most this much of a topic, so the reason after it fits. */
#define TOPIC_SHOWN 200

int handle_publish(struct client *c, const struct mqtt_publish *p)
{
	struct broker *b = c->b;
	const char *module = c->session->module;
	int shown = p->topic.len > TOPIC_SHOWN ? TOPIC_SHOWN : (int)p->topic.len;
	const char *more = p->topic.len > TOPIC_SHOWN ? "..." : "";
	if (p->qos == 2) {
		client_close(c, LOG_LVL_WARN, true,
			     "PUBLISH to %.*s%s at QoS 2, which is not supported", shown,
			     p->topic.p, more);
		return -1;
	}
	const char *bag;
	size_t bag_len;
	switch (acl_publish(b->cfg->device_id, module, p->topic.p, p->topic.len, &bag, &bag_len)) {
	case ACL_PUB_TELEMETRY: {
		if (p->payload_len > MSG_MAX_BODY) {
			client_close(c, LOG_LVL_WARN, true,
				     "message of %zu bytes is over the limit of %d", p->payload_len,
				     MSG_MAX_BODY);
			return -1;
		}
		struct pending_ack *a = NULL;
		if (p->qos == 1 && !(a = pending_ack_new(c, p->packet_id))) {
			client_close(c, LOG_LVL_ERROR, true, "out of memory");
			return -1;
		}
		struct berr err;
		int rc =
		    routing_submit(b, module, bag, bag_len, p->payload, p->payload_len, a, &err);
		if (rc < 0) {
			if (a)
				a->done = true; /* never acknowledged: the connection closes */
			client_close(c, LOG_LVL_WARN, true, "message to %.*s%s refused: %s", shown,
				     p->topic.p, more, err.msg);
			return -1;
		}
		return c->state == CLIENT_CLOSED ? -1 : 0;
	}
	case ACL_PUB_TWIN:
	case ACL_PUB_METHOD_RESPONSE: {
		char *topic = strndup(p->topic.p, p->topic.len);
		if (!topic) {
			client_close(c, LOG_LVL_ERROR, true, "out of memory");
			return -1;
		}
		if (topic[1] == 'i' && !strncmp(topic, "$iothub/twin/", 13))
			handle_twin_request(c, topic, p->payload, p->payload_len);
		else
			handle_method_response(c, topic, p->payload, p->payload_len);
		free(topic);
		return ack_now(c, p);
	}
	default:
		client_close(c, LOG_LVL_WARN, true,
			     "PUBLISH to %.*s%s refused: module %s may publish only to "
			     "devices/%s/modules/%s/messages/events and $iothub/ twin and method "
			     "topics",
			     shown, p->topic.p, more, module, b->cfg->device_id, module);
		return -1;
	}
}
