/* Private to agent/: the CLI side of <run>/berthd.sock (see control.c for the protocol). */
#ifndef BERTH_AGENT_CLIENT_H
#define BERTH_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_tree.h>

#include "common/err.h"

#define CLIENT_REPLY_MAX (16 * 1024 * 1024)

/* Sends one request line and parses the reply. An unreachable daemon gives
 * "cannot reach the daemon at <path>: is berth daemon running?". A reply
 * whose status is not 200 becomes an error with the daemon's message. */
NODISCARD int daemon_request(const char *run, const char *request, yajl_val *reply,
			     struct berr *err);

/* The state directory: the one given with --root (given_set), else the
 * running daemon's, else `given` (the default). */
void daemon_state_root(const char *run, const char *given, bool given_set, char *out, size_t cap);

#endif
