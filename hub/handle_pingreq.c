/* PINGREQ: the client is alive (any packet resets the keepalive timer). */
#include "hub/broker.h"

int handle_pingreq(struct client *c)
{
	return send_pingresp(c);
}
