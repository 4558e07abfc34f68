/* PUBACK from a client: a QoS 1 message the hub sent is delivered, which
 * opens the session's window for the next one. */
#include "common/log.h"
#include "hub/broker.h"

int handle_puback(struct client *c, uint16_t packet_id)
{
	if (!session_acknowledge(c->session, packet_id)) {
		log_debug("%s: PUBACK for packet %u, which is not in flight", c->label, packet_id);
		return 0;
	}
	session_pump(c->session);
	return 0;
}
