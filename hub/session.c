/* Sessions: subscriptions, QoS 1 messages in flight, and the hub's own
 * messages waiting to go out. Routed messages stay in the store until the
 * module's session has room and a subscription for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hub/broker.h"

struct session *session_find(struct broker *b, const char *client_id)
{
	for (struct session *s = b->sessions; s; s = s->next)
		if (!strcmp(s->client_id, client_id))
			return s;
	return NULL;
}

struct session *session_new(struct broker *b, const char *client_id, const char *module,
			    bool persistent)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->client_id = strdup(client_id);
	s->module = strdup(module);
	if (!s->client_id || !s->module) {
		free(s->client_id);
		free(s->module);
		free(s);
		return NULL;
	}
	s->b = b;
	s->persistent = persistent;
	s->inflight_tail = &s->inflight;
	s->queue_tail = &s->queue;
	s->next = b->sessions;
	b->sessions = s;
	return s;
}

static void out_msg_free(struct out_msg *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->payload);
	free(m);
}

static void inflight_free(struct broker *b, struct inflight *f, bool release)
{
	if (f->endpoint && release)
		store_release(b->store, f->endpoint, f->seq);
	free(f->endpoint);
	out_msg_free(f->own);
	free(f);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	while (s->inflight) {
		struct inflight *f = s->inflight;
		s->inflight = f->next;
		inflight_free(s->b, f, true);
	}
	while (s->queue) {
		struct out_msg *m = s->queue;
		s->queue = m->next;
		out_msg_free(m);
	}
	while (s->subs) {
		struct subscription *sub = s->subs;
		s->subs = sub->next;
		free(sub->filter);
		free(sub);
	}
	free(s->client_id);
	free(s->module);
	free(s);
}

void session_discard(struct session *s)
{
	if (s->discarded)
		return;
	s->discarded = true;
	/* Its messages go back to the store now, so the module's next session
	 * can have them in this same turn of the loop. */
	for (struct inflight *f = s->inflight; f; f = f->next) {
		if (f->endpoint) {
			store_release(s->b->store, f->endpoint, f->seq);
			free(f->endpoint);
			f->endpoint = NULL;
			f->msg = NULL;
		}
	}
	struct session **sp = &s->b->sessions;
	while (*sp && *sp != s)
		sp = &(*sp)->next;
	if (*sp)
		*sp = s->next;
	s->next = s->b->discarded;
	s->b->discarded = s;
}

void session_detach(struct session *s)
{
	s->client = NULL;
	/* QoS 0 messages are not kept for a disconnected client. */
	struct out_msg **mp = &s->queue;
	while (*mp) {
		struct out_msg *m = *mp;
		if (m->qos == 0) {
			*mp = m->next;
			s->n_queued--;
			s->queued_bytes -= m->len;
			out_msg_free(m);
		} else {
			mp = &m->next;
		}
	}
	s->queue_tail = mp;
}

int session_granted_qos(const struct session *s, const char *topic, size_t len)
{
	int best = -1;
	for (const struct subscription *sub = s->subs; sub; sub = sub->next)
		if (sub->qos > best &&
		    mqtt_topic_matches(sub->filter, strlen(sub->filter), topic, len))
			best = sub->qos;
	return best;
}

uint16_t session_next_packet_id(struct session *s)
{
	for (;;) {
		uint16_t id = ++s->last_packet_id;
		if (id == 0)
			continue;
		bool used = false;
		for (struct inflight *f = s->inflight; f && !used; f = f->next)
			used = f->packet_id == id;
		if (!used)
			return id;
	}
}

int session_enqueue(struct session *s, const char *topic, const void *payload, size_t len,
		    uint8_t qos)
{
	int granted = session_granted_qos(s, topic, strlen(topic));
	if (granted < 0)
		return 1;
	uint8_t q = qos < granted ? qos : (uint8_t)granted;
	if (!s->client && q == 0)
		return 1;
	if (s->n_queued >= SESSION_QUEUE_MAX || s->queued_bytes + len > SESSION_QUEUE_BYTES) {
		if (q == 0) {
			log_warn("%s: QoS 0 message to %s dropped: the client is not keeping up",
				 s->client_id, topic);
			return -1;
		}
		if (s->client) {
			client_close(s->client, LOG_LVL_WARN, true,
				     "slow consumer: %zu messages wait to go out", s->n_queued);
			return -1;
		}
		struct out_msg *old = s->queue;
		log_warn("%s: session queue full while disconnected: dropping the oldest message "
			 "(to %s)",
			 s->client_id, old->topic);
		s->queue = old->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		s->n_queued--;
		s->queued_bytes -= old->len;
		out_msg_free(old);
	}
	struct out_msg *m = calloc(1, sizeof(*m));
	if (!m || !(m->topic = strdup(topic)) || (len && !(m->payload = malloc(len)))) {
		out_msg_free(m);
		log_error("%s: out of memory queueing a message to %s", s->client_id, topic);
		return -1;
	}
	if (len)
		memcpy(m->payload, payload, len);
	m->len = len;
	m->qos = q;
	*s->queue_tail = m;
	s->queue_tail = &m->next;
	s->n_queued++;
	s->queued_bytes += len;
	session_pump(s);
	return 0;
}

static void inflight_add(struct session *s, struct inflight *f)
{
	*s->inflight_tail = f;
	s->inflight_tail = &f->next;
	s->n_inflight++;
}

/* Sends the next queued message of the hub's own; false when none. */
static bool pump_queue(struct session *s, struct client *c)
{
	struct out_msg *m = s->queue;
	if (!m)
		return false;
	s->queue = m->next;
	if (!s->queue)
		s->queue_tail = &s->queue;
	s->n_queued--;
	s->queued_bytes -= m->len;
	m->next = NULL;
	if (m->qos == 0) {
		send_publish(c, m->topic, m->payload, m->len, 0, 0, false);
		out_msg_free(m);
		return true;
	}
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f) {
		out_msg_free(m);
		return true;
	}
	f->packet_id = session_next_packet_id(s);
	f->own = m;
	inflight_add(s, f);
	send_publish(c, m->topic, m->payload, m->len, 1, f->packet_id, false);
	return true;
}

/* Inputs the module subscribed to: an input's messages wait in the store
 * while no subscription covers its topic (as far as the topic is known
 * before the message: its property bag is not). */
static bool input_subscribed(const char *endpoint, void *arg)
{
	struct session *s = arg;
	struct hub_message none = {0};
	struct strbuf topic = STRBUF_INIT;
	bool ok = routing_input_topic(s->b, endpoint, &none, &topic) == 0 &&
		  session_granted_qos(s, topic.buf, topic.len) >= 0;
	strbuf_release(&topic);
	return ok;
}

/* Leases and sends the next routed message for this module; false when
 * there is none or no subscription takes it. */
static bool pump_store(struct session *s, struct client *c)
{
	struct broker *b = s->b;
	char prefix[STORE_ENDPOINT_MAX];
	snprintf(prefix, sizeof(prefix), "/modules/%s/inputs/", s->module);
	struct store_item item;
	if (store_lease(b->store, prefix, input_subscribed, s, b->now_ms, &item) != 0)
		return false;
	struct strbuf topic = STRBUF_INIT;
	if (routing_input_topic(b, item.endpoint, item.msg, &topic) < 0) {
		log_error("%s: cannot build the delivery topic for %s; message dropped",
			  s->client_id, item.endpoint);
		store_ack(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return true;
	}
	int granted = session_granted_qos(s, topic.buf, topic.len);
	if (granted < 0) {
		/* A filter on the property bag itself: stays stored until a
		 * subscription takes it. */
		store_release(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return false;
	}
	if (granted == 0) {
		send_publish(c, topic.buf, item.msg->body, item.msg->body_len, 0, 0, false);
		hub_metrics_sent(b, item.endpoint, item.msg, item.priority);
		store_ack(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return true;
	}
	struct inflight *f = calloc(1, sizeof(*f));
	if (!f || !(f->endpoint = strdup(item.endpoint))) {
		free(f);
		store_release(b->store, item.endpoint, item.seq);
		strbuf_release(&topic);
		return false;
	}
	f->seq = item.seq;
	f->msg = item.msg;
	f->priority = item.priority;
	f->packet_id = session_next_packet_id(s);
	inflight_add(s, f);
	send_publish(c, topic.buf, item.msg->body, item.msg->body_len, 1, f->packet_id, false);
	strbuf_release(&topic);
	return true;
}

void session_pump(struct session *s)
{
	struct client *c = s->client;
	while (c && c->state == CLIENT_CONNECTED && s->n_inflight < SESSION_WINDOW &&
	       client_unsent(c) < CLIENT_WBUF_HIGH) {
		if (!pump_queue(s, c) && !pump_store(s, c))
			break;
	}
}

void session_resend(struct session *s)
{
	struct client *c = s->client;
	for (struct inflight *f = s->inflight; f && c && c->state == CLIENT_CONNECTED;
	     f = f->next) {
		if (f->own) {
			send_publish(c, f->own->topic, f->own->payload, f->own->len, 1,
				     f->packet_id, true);
			continue;
		}
		struct strbuf topic = STRBUF_INIT;
		if (routing_input_topic(s->b, f->endpoint, f->msg, &topic) == 0)
			send_publish(c, topic.buf, f->msg->body, f->msg->body_len, 1, f->packet_id,
				     true);
		strbuf_release(&topic);
	}
}

void session_pump_module(struct broker *b, const char *module)
{
	for (struct session *s = b->sessions; s; s = s->next)
		if (!strcmp(s->module, module) && s->client)
			session_pump(s);
}

bool session_acknowledge(struct session *s, uint16_t packet_id)
{
	struct inflight **fp = &s->inflight;
	while (*fp && (*fp)->packet_id != packet_id)
		fp = &(*fp)->next;
	struct inflight *f = *fp;
	if (!f)
		return false;
	*fp = f->next;
	if (s->inflight_tail == &f->next)
		s->inflight_tail = fp;
	s->n_inflight--;
	if (f->endpoint) {
		hub_metrics_sent(s->b, f->endpoint, f->msg, f->priority);
		store_ack(s->b->store, f->endpoint, f->seq);
	}
	inflight_free(s->b, f, false);
	return true;
}
