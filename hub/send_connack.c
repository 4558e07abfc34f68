/* CONNACK: the answer to CONNECT. A refusal is sent, then the connection
 * closes once it is written. */
#include "common/log.h"
#include "hub/broker.h"

int send_connack(struct client *c, bool session_present, uint8_t code)
{
	if (mqtt_encode_connack(&c->wbuf, code == 0 && session_present, code) < 0) {
		client_close(c, LOG_LVL_ERROR, false, "out of memory for CONNACK");
		return -1;
	}
	if (code != 0)
		c->close_after_flush = true;
	return client_send_soon(c);
}
