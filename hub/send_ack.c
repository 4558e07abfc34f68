/* The small answers: PUBACK, SUBACK, UNSUBACK, PINGRESP. */
#include "common/log.h"
#include "hub/broker.h"

static int sent(struct client *c, int rc, const char *what)
{
	if (rc < 0) {
		client_close(c, LOG_LVL_ERROR, true, "out of memory for %s", what);
		return -1;
	}
	return client_send_soon(c);
}

int send_puback(struct client *c, uint16_t packet_id)
{
	return sent(c, mqtt_encode_ack(&c->wbuf, MQTT_PUBACK, packet_id), "PUBACK");
}

int send_suback(struct client *c, uint16_t packet_id, const uint8_t *codes, size_t n)
{
	return sent(c, mqtt_encode_suback(&c->wbuf, packet_id, codes, n), "SUBACK");
}

int send_unsuback(struct client *c, uint16_t packet_id)
{
	return sent(c, mqtt_encode_ack(&c->wbuf, MQTT_UNSUBACK, packet_id), "UNSUBACK");
}

int send_pingresp(struct client *c)
{
	return sent(c, mqtt_encode_empty(&c->wbuf, MQTT_PINGRESP), "PINGRESP");
}
