/* The cloud link's URLs (upstream.url, upstream.rest_url): never overrun,
 * and what parses has a host of the allowed characters, a port, and a
 * path only for HTTP. */
#include <stdlib.h>
#include <string.h>

#include "common/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct url u;
	struct berr err;
	unsigned all = 1u << URL_MQTT | 1u << URL_MQTTS | 1u << URL_HTTP | 1u << URL_HTTPS;
	if (url_parse(s, all, &u, &err) == 0) {
		if (!u.host[0] || u.port == 0 || strlen(u.host) > URL_HOST_MAX)
			abort();
		if (u.path[0] && (u.scheme == URL_MQTT || u.scheme == URL_MQTTS))
			abort();
		if (strpbrk(u.path, "?# \r\n"))
			abort();
		url_host_is_loopback(u.host);
		url_host_is_address(u.host);
	}
	free(s);
	return 0;
}
