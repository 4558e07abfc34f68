/* The URLs of the cloud link ("mqtts://host:8883", "https://host/prefix"),
 * read strictly: a scheme the caller allows, a host name or an IP address
 * ("[v6]" in brackets), an optional port, and for HTTP an optional path;
 * no user info, query or fragment. */
#ifndef BERTH_URL_H
#define BERTH_URL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define URL_MAX	     1024
#define URL_HOST_MAX 255

enum url_scheme { URL_MQTT, URL_MQTTS, URL_HTTP, URL_HTTPS };

struct url {
	enum url_scheme scheme;
	bool tls;
	char host[URL_HOST_MAX + 1]; /* without brackets */
	uint16_t port;		     /* the scheme's default when not given */
	char path[URL_MAX];	     /* "" or "/..." without a trailing '/' (HTTP only) */
};

/* Parses url; `allowed` is a bit mask of (1u << URL_x). */
NODISCARD int url_parse(const char *text, unsigned allowed, struct url *out, struct berr *err);

/* "localhost", 127.0.0.0/8 or ::1: a host whose traffic never leaves the
 * machine, so plain text to it reveals nothing. */
bool url_host_is_loopback(const char *host);

/* True when host is an IPv4 or IPv6 address (not a name). */
bool url_host_is_address(const char *host);

#endif
