/* CONNECT: protocol level, identity (auth.c), session take-over and
 * resumption (persistent sessions survive hub restarts: session.c), will,
 * CONNACK, then redelivery of what a persistent session left
 * unacknowledged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/broker.h"
#include "hub/upstream.h"

int handle_connect(struct client *c, const struct mqtt_connect *p)
{
	struct broker *b = c->b;
	if (p->level != MQTT_PROTOCOL_LEVEL) {
		log_warn("%s: CONNECT refused (code 1): protocol level %u, only 4 (MQTT 3.1.1) is "
			 "spoken",
			 c->label, p->level);
		send_connack(c, false, MQTT_CONNACK_BAD_VERSION);
		return -1;
	}
	char module[HUB_NAME_MAX + 1];
	uint8_t code = auth_check(c, p, module, sizeof(module));
	if (c->pidfd >= 0) {
		close(c->pidfd);
		c->pidfd = -1;
	}
	if (code != MQTT_CONNACK_ACCEPTED) {
		/* No id: the label set must not grow with what strangers send. */
		HUB_COUNT(b, CONNECT_FAILED, "",
			  code == MQTT_CONNACK_ID_REJECTED ? "identifier_rejected"
							   : "not_authenticated");
		send_connack(c, false, code);
		return -1;
	}
	char client_id[2 * HUB_NAME_MAX + 2];
	snprintf(client_id, sizeof(client_id), "%s/%s", b->cfg->device_id, module);

	struct session *s = session_find(b, client_id);
	if (s && s->client)
		client_close(s->client, LOG_LVL_INFO, true, "taken over by a new connection (%s)",
			     strchr(c->label, '(') ? strchr(c->label, '(') : c->label);
	s = session_find(b, client_id); /* a clean session ended with its connection */
	bool present = false, saved = false;
	if (p->clean_session) {
		saved = s && s->persistent;
		if (s)
			session_discard(s);
		s = session_new(b, client_id, module, false);
	} else if (s) {
		present = true;
	} else {
		s = session_new(b, client_id, module, true);
		saved = s != NULL;
	}
	/* Known on disk before the client is told (session present or not). */
	if (saved)
		sessions_save(b);
	if (!s) {
		log_error("%s: out of memory for the session", c->label);
		send_connack(c, false, MQTT_CONNACK_UNAVAILABLE);
		return -1;
	}
	if (p->will && !(c->will = out_msg_new(p->will_topic.p, p->will_topic.len, p->will_payload,
					       p->will_len, p->will_qos ? 1 : 0))) {
		log_error("%s: out of memory for the will", c->label);
		send_connack(c, false, MQTT_CONNACK_UNAVAILABLE);
		return -1;
	}
	s->client = c;
	c->session = s;
	c->state = CLIENT_CONNECTED;
	c->keepalive = p->keepalive;
	if (send_connack(c, present, MQTT_CONNACK_ACCEPTED) < 0)
		return -1;
	HUB_COUNT(b, CONNECT_SUCCESS, module);
	log_info("%s: connected (%s session%s, keepalive %u s)", c->label,
		 s->persistent ? "persistent" : "clean", present ? " resumed" : "", p->keepalive);
	if (present)
		session_resend(s);
	session_pump(s);
	upstream_twin_client(b, client_id, true);
	return c->state == CLIENT_CLOSED ? -1 : 0;
}
