/* Private to agent/: what `berth list` and `berth check` say of the cloud link: the hub's
 * "upstream" status (connected, or since when not and why; the messages
 * waiting and the age of the oldest) and the daemon's module identities. */
#ifndef BERTH_AGENT_UPSTREAM_VIEW_H
#define BERTH_AGENT_UPSTREAM_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"

/* One line for the hub's "upstream" object; true when it is connected or
 * has nothing to send, false when messages wait for a connection. */
bool upstream_describe(yajl_val up, int64_t now_ms, char *out, size_t cap);

/* One line for the daemon's identities fields ("identities_wanted", ...);
 * true when every identity is ready. */
bool upstream_identities_describe(yajl_val info, char *out, size_t cap);

/* The hub's status over <run>/hubctl.sock (free with yajl_tree_free). */
NODISCARD int upstream_query(const char *run, yajl_val *status, struct berr *err);

#endif
