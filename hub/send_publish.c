/* PUBLISH to a client. The caller keeps QoS 1 messages in the session until
 * the PUBACK; the output buffer is bounded, so a QoS 0 message that does not
 * fit is dropped with a log line. */
#include <string.h>

#include "common/log.h"
#include "hub/broker.h"

int send_publish(struct client *c, const char *topic, const uint8_t *payload, size_t len,
		 uint8_t qos, uint16_t packet_id, bool dup)
{
	size_t topic_len = strlen(topic);
	size_t size = mqtt_publish_size(topic_len, qos, len);
	size_t limit = 2 * c->b->cfg->max_packet + CLIENT_WBUF_HIGH;
	if (qos == 0 && client_unsent(c) + size > limit) {
		log_warn("%s: QoS 0 message to %s dropped: %zu bytes wait to be sent", c->label,
			 topic, client_unsent(c));
		return -1;
	}
	struct mqtt_publish p = {
	    .dup = dup,
	    .qos = qos,
	    .topic = {topic, (uint16_t)topic_len},
	    .packet_id = packet_id,
	    .payload = payload,
	    .payload_len = len,
	};
	if (topic_len > 65535 || mqtt_encode_publish(&c->wbuf, &p) < 0) {
		client_close(c, LOG_LVL_ERROR, true, "cannot encode a PUBLISH to %.100s", topic);
		return -1;
	}
	return client_send_soon(c);
}
