/* Access control: what a module may publish to and subscribe to, as edgeHub
 * allows it. The device and module names come from the authenticated
 * identity and contain no wildcard or '/' (hub_name_valid). */
#include <stdio.h>
#include <string.h>

#include "hub/broker.h"

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && !memcmp(s, prefix, plen);
}

enum acl_publish acl_publish(const char *device, const char *module, const char *topic, size_t len,
			     const char **bag, size_t *bag_len)
{
	char events[2 * HUB_NAME_MAX + 64];
	int n = snprintf(events, sizeof(events), "devices/%s/modules/%s/messages/events", device,
			 module);
	if (n > 0 && (size_t)n < sizeof(events) && has_prefix(topic, len, events, (size_t)n)) {
		if (len == (size_t)n) {
			*bag = topic + len;
			*bag_len = 0;
			return ACL_PUB_TELEMETRY;
		}
		if (topic[n] == '/') {
			*bag = topic + n + 1;
			*bag_len = len - (size_t)n - 1;
			return ACL_PUB_TELEMETRY;
		}
		return ACL_PUB_DENIED;
	}
	if (has_prefix(topic, len, "$iothub/twin/", 13))
		return ACL_PUB_TWIN;
	if (has_prefix(topic, len, "$iothub/methods/res/", 20))
		return ACL_PUB_METHOD_RESPONSE;
	return ACL_PUB_DENIED;
}

/* The filter stays inside prefix: it is the prefix, or the prefix followed
 * by '/' and anything (wildcards included). */
static bool within(const char *filter, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);
	if (!has_prefix(filter, len, prefix, plen))
		return false;
	return len == plen || filter[plen] == '/';
}

bool acl_subscribe(const char *device, const char *module, const char *filter, size_t len)
{
	char own[2 * HUB_NAME_MAX + 32];
	int n = snprintf(own, sizeof(own), "devices/%s/modules/%s", device, module);
	if (n > 0 && (size_t)n < sizeof(own) && within(filter, len, own))
		return true;
	return within(filter, len, "$iothub/twin/res") ||
	       within(filter, len, "$iothub/twin/PATCH/properties/desired") ||
	       within(filter, len, "$iothub/methods/POST");
}
