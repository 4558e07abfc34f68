#include "common/url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *prefix;
	enum url_scheme scheme;
	uint16_t port;
} schemes[] = {
    {"mqtt://", URL_MQTT, 1883},
    {"mqtts://", URL_MQTTS, 8883},
    {"http://", URL_HTTP, 80},
    {"https://", URL_HTTPS, 443},
};

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static bool path_char(char c)
{
	return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f && c != '?' && c != '#' &&
	       c != '\\' && c != '"' && c != '<' && c != '>' && c != '`' && c != '{' && c != '}' &&
	       c != '|' && c != '^';
}

static int parse_port(const char *p, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5)
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int url_parse(const char *text, unsigned allowed, struct url *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	size_t total = strnlen(text, URL_MAX + 1);
	if (total > URL_MAX)
		return berr_set(err, 0, "URL longer than %d bytes", URL_MAX);
	const char *p = NULL;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]) && !p; i++) {
		size_t n = strlen(schemes[i].prefix);
		if (!strncasecmp(text, schemes[i].prefix, n) &&
		    (allowed & (1u << schemes[i].scheme))) {
			out->scheme = schemes[i].scheme;
			out->port = schemes[i].port;
			p = text + n;
		}
	}
	if (!p) {
		char want[64] = "";
		for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if (allowed & (1u << schemes[i].scheme)) {
				if (want[0])
					strncat(want, " or ", sizeof(want) - strlen(want) - 1);
				strncat(want, schemes[i].prefix, sizeof(want) - strlen(want) - 1);
			}
		return berr_set(err, 0, "\"%.64s\" does not start with %s", text, want);
	}
	out->tls = out->scheme == URL_MQTTS || out->scheme == URL_HTTPS;
	const char *host = p, *host_end;
	bool bracketed = *p == '[';
	if (bracketed) {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return berr_set(err, 0, "\"%.64s\": '[' without ']'", text);
		p = host_end + 1;
	} else {
		while (host_char(*p))
			p++;
		host_end = p;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen > URL_HOST_MAX)
		return berr_set(err, 0, "\"%.64s\": no host, or a host longer than %d bytes", text,
				URL_HOST_MAX);
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (bracketed) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			return berr_set(err, 0, "\"%.64s\": [%s] is not an IPv6 address", text,
					out->host);
	} else if (out->host[0] == '.' || out->host[hlen - 1] == '-' || out->host[0] == '-' ||
		   strstr(out->host, "..")) {
		return berr_set(err, 0, "\"%.64s\": %s is not a host name", text, out->host);
	}
	if (*p == ':') {
		const char *port = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (parse_port(port, (size_t)(p - port), &out->port) < 0)
			return berr_set(err, 0, "\"%.64s\": the port is not 1-65535", text);
	}
	bool http = out->scheme == URL_HTTP || out->scheme == URL_HTTPS;
	size_t plen = strlen(p);
	if (plen && *p != '/')
		return berr_set(err, 0, "\"%.64s\": unexpected \"%.16s\" after the host", text, p);
	while (plen && p[plen - 1] == '/')
		plen--;
	if (plen && !http)
		return berr_set(err, 0, "\"%.64s\": an MQTT URL has no path", text);
	for (size_t i = 0; i < plen; i++)
		if (!path_char(p[i]))
			return berr_set(
			    err, 0,
			    "\"%.64s\": the path may not hold a query, a fragment, spaces "
			    "or control characters",
			    text);
	memcpy(out->path, p, plen);
	out->path[plen] = '\0';
	return 0;
}

bool url_host_is_address(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

bool url_host_is_loopback(const char *host)
{
	if (!strcasecmp(host, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}
