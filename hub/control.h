/* Private to hub/: the control socket's connections: one JSON request line
 * in, one JSON line out, then the connection closes. */
#ifndef BERTH_HUB_CONTROL_H
#define BERTH_HUB_CONTROL_H

#include "common/strbuf.h"
#include "hub/broker.h"

struct control_conn {
	struct hub_io io;
	struct broker *b;
	struct control_conn *next;
	struct strbuf in;
	struct strbuf out;
	size_t off;
	bool request_taken; /* a request is being answered */
	bool closed;
};

/* Frees connections closed during this loop turn. */
void control_free_closed(struct broker *b);

#endif
