/* SUBSCRIBE and UNSUBSCRIBE. A filter outside what the module may receive
 * (its own inputs, twin and method topics) gets 0x80 in the SUBACK and a
 * log line, as does one beyond the session's bounds (SESSION_SUBS_MAX
 * filters of at most SUB_FILTER_MAX bytes); QoS 2 is granted as 1. A new
 * subscription may let stored messages flow. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/broker.h"

/* 0 subscribed, -1 out of memory, -2 the session has all it may have. */
static int subscribe_one(struct session *s, const struct mqtt_topic_request *t, uint8_t *granted)
{
	uint8_t qos = t->qos > 1 ? 1 : t->qos;
	for (struct subscription *sub = s->subs; sub; sub = sub->next) {
		if (strlen(sub->filter) == t->filter.len &&
		    !memcmp(sub->filter, t->filter.p, t->filter.len)) {
			sub->qos = qos;
			*granted = qos;
			return 0;
		}
	}
	if (s->n_subs >= SESSION_SUBS_MAX)
		return -2;
	struct subscription *sub = calloc(1, sizeof(*sub));
	if (!sub || !(sub->filter = strndup(t->filter.p, t->filter.len))) {
		free(sub);
		return -1;
	}
	sub->qos = qos;
	sub->next = s->subs;
	s->subs = sub;
	s->n_subs++;
	*granted = qos;
	return 0;
}

int handle_subscribe(struct client *c, const struct mqtt_subscribe *req)
{
	struct session *s = c->session;
	uint8_t codes[MQTT_MAX_FILTERS];
	for (size_t i = 0; i < req->n; i++) {
		const struct mqtt_topic_request *t = &req->items[i];
		codes[i] = MQTT_SUBACK_FAILURE;
		if (t->filter.len > SUB_FILTER_MAX) {
			client_log_refusal(
			    c, LOG_LVL_WARN,
			    "SUBSCRIBE to a filter of %u bytes refused: the limit is %d",
			    t->filter.len, SUB_FILTER_MAX);
			continue;
		}
		if (!acl_subscribe(c->b->cfg->device_id, s->module, t->filter.p, t->filter.len)) {
			client_log_refusal(
			    c, LOG_LVL_WARN,
			    "SUBSCRIBE to %.*s refused: module %s may subscribe only to "
			    "devices/%s/modules/%s/#, $iothub/twin/res/#, "
			    "$iothub/twin/PATCH/properties/desired/# and $iothub/methods/POST/#",
			    (int)t->filter.len, t->filter.p, s->module, c->b->cfg->device_id,
			    s->module);
			continue;
		}
		int rc = subscribe_one(s, t, &codes[i]);
		if (rc == -2)
			client_log_refusal(c, LOG_LVL_WARN,
					   "SUBSCRIBE to %.*s refused: the session already has %d "
					   "subscriptions",
					   (int)t->filter.len, t->filter.p, SESSION_SUBS_MAX);
		else if (rc < 0)
			log_error("%s: out of memory subscribing to %.*s", c->label,
				  (int)t->filter.len, t->filter.p);
		else
			log_debug("%s: subscribed to %.*s at QoS %u", c->label, (int)t->filter.len,
				  t->filter.p, codes[i]);
	}
	if (s->persistent)
		sessions_save(c->b);
	if (send_suback(c, req->packet_id, codes, req->n) < 0)
		return -1;
	session_pump(s);
	return c->state == CLIENT_CLOSED ? -1 : 0;
}

int handle_unsubscribe(struct client *c, const struct mqtt_subscribe *req)
{
	struct session *s = c->session;
	for (size_t i = 0; i < req->n; i++) {
		const struct mqtt_str *f = &req->items[i].filter;
		for (struct subscription **sp = &s->subs; *sp; sp = &(*sp)->next) {
			struct subscription *sub = *sp;
			if (strlen(sub->filter) == f->len && !memcmp(sub->filter, f->p, f->len)) {
				*sp = sub->next;
				free(sub->filter);
				free(sub);
				s->n_subs--;
				break;
			}
		}
	}
	if (s->persistent)
		sessions_save(c->b);
	return send_unsuback(c, req->packet_id);
}
