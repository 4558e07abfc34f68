/* WWW-Authenticate (RFC 7235): challenge = scheme [ params ], params being
 * name=token or name="quoted string", comma-separated. One header may hold
 * several challenges; the first Bearer or Basic one is taken. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "registry/registry.h"

#define CHALLENGE_MAX 4096

static bool is_tchar(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a token or quoted string into out (cap bytes); NULL if malformed or
 * too long. */
static const char *read_value(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (!*p)
				return NULL;
			if (*p == '\\') {
				p++;
				if (!*p)
					return NULL;
			}
			if ((unsigned char)*p < 0x20 && *p != '\t')
				return NULL;
			if (n + 1 >= cap)
				return NULL;
			out[n++] = *p;
		}
		p++;
	} else {
		while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '=') {
			if (n + 1 >= cap)
				return NULL;
			out[n++] = *p++;
		}
		if (n == 0)
			return NULL;
	}
	out[n] = '\0';
	return p;
}

int auth_challenge_parse(const char *value, struct auth_challenge *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	if (strnlen(value, CHALLENGE_MAX + 1) > CHALLENGE_MAX)
		return berr_set(err, 0, "WWW-Authenticate header longer than %d bytes",
				CHALLENGE_MAX);
	const char *p = skip_ws(value);
	enum auth_scheme current = AUTH_NONE;
	bool found = false;
	bool saw_scheme = false;
	while (*p) {
		/* A token: either a new scheme or a parameter name. */
		const char *start = p;
		while (is_tchar(*p))
			p++;
		size_t tlen = (size_t)(p - start);
		if (tlen == 0)
			return berr_set(err, 0, "malformed WWW-Authenticate header \"%.80s\"",
					value);
		const char *q = skip_ws(p);
		if (*q == '=' && saw_scheme) {
			/* name=value */
			char name[32];
			char val[1024];
			if (tlen >= sizeof(name))
				tlen = sizeof(name) - 1;
			memcpy(name, start, tlen);
			name[tlen] = '\0';
			q = read_value(skip_ws(q + 1), val, sizeof(val));
			if (!q)
				return berr_set(
				    err, 0, "malformed WWW-Authenticate header \"%.80s\"", value);
			if (current != AUTH_NONE && !found) {
				char *dst = NULL;
				size_t cap = 0;
				if (!strcasecmp(name, "realm")) {
					dst = out->realm;
					cap = sizeof(out->realm);
				} else if (!strcasecmp(name, "service")) {
					dst = out->service;
					cap = sizeof(out->service);
				} else if (!strcasecmp(name, "scope")) {
					dst = out->scope;
					cap = sizeof(out->scope);
				}
				if (dst) {
					if (strlen(val) >= cap)
						return berr_set(err, 0,
								"WWW-Authenticate %s is too long",
								name);
					memcpy(dst, val, strlen(val) + 1);
				}
			}
			p = skip_ws(q);
			if (*p == ',')
				p = skip_ws(p + 1);
			else if (*p)
				return berr_set(
				    err, 0, "malformed WWW-Authenticate header \"%.80s\"", value);
			continue;
		}
		/* A scheme starts a new challenge; the previous one, if known, wins. */
		if (current != AUTH_NONE)
			found = true;
		if (!found) {
			if (tlen == 6 && !strncasecmp(start, "Bearer", 6))
				current = AUTH_BEARER;
			else if (tlen == 5 && !strncasecmp(start, "Basic", 5))
				current = AUTH_BASIC;
			else
				current = AUTH_NONE;
		}
		saw_scheme = true;
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
	}
	if (current == AUTH_NONE)
		return berr_set(err, 0,
				"WWW-Authenticate header names no supported scheme (Basic or "
				"Bearer): \"%.80s\"",
				value);
	out->scheme = current;
	if (current == AUTH_BEARER && !out->realm[0])
		return berr_set(err, 0, "WWW-Authenticate Bearer challenge without a realm");
	if (current == AUTH_BEARER && strncmp(out->realm, "https://", 8) &&
	    strncmp(out->realm, "http://", 7))
		return berr_set(err, 0, "WWW-Authenticate realm \"%.80s\" is not an http(s) URL",
				out->realm);
	return 0;
}
