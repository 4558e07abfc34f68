/* DISCONNECT: a clean goodbye; the will is discarded. */
#include "common/log.h"
#include "hub/broker.h"

int handle_disconnect(struct client *c)
{
	client_close(c, LOG_LVL_INFO, false, "DISCONNECT");
	return -1;
}
