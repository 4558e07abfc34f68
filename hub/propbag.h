/* Private to hub/: property bags, the "k1=v1&k2=v2" tail of a telemetry or
 * input topic that carries a message's properties, percent-encoded, as IoT Hub and edgeHub
 * read and write them. System properties use the "$.xx" keys of
 * msg_sys_bag_key(); everything else is an application property. */
#ifndef BERTH_HUB_PROPBAG_H
#define BERTH_HUB_PROPBAG_H

#include <stddef.h>

#include "common/err.h"
#include "common/strbuf.h"
#include "hub/message.h"

#define PROPBAG_KEY_MAX	  256  /* decoded bytes */
#define PROPBAG_VALUE_MAX 8192 /* decoded bytes */

/* Reads a bag of len bytes into m (whose properties must be unset). The bag
 * ends at len or at the first '/'. A key without '=' has an empty value; a
 * repeated key keeps the last value. "$.cdid" and "$.cmid" are dropped: the
 * hub sets them from the sender's authenticated identity. Refuses bad
 * escapes, an empty key, '=' inside a value, keys or values over the limits
 * and more than MSG_MAX_PROPS application properties. On error m may hold
 * some properties; the caller frees it. */
NODISCARD int propbag_parse(const char *bag, size_t len, struct hub_message *m, struct berr *err);

/* Appends m's properties as a bag: set system properties (in enum order,
 * skipping those whose bit (1u << MSG_SYS_x) is in skip), then application
 * properties in order; keys and values percent-encoded (RFC 3986 unreserved
 * characters stay as they are), so "$.cdid" is written "%24.cdid" as IoT Hub
 * writes it. */
int propbag_write(const struct hub_message *m, unsigned skip, struct strbuf *out);

#endif
