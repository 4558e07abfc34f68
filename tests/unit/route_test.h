/* Helpers for the route tests: messages built in a few calls, and a
 * condition's three-valued result read through the public API. */
#ifndef BERTH_TEST_ROUTE_H
#define BERTH_TEST_ROUTE_H

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "hub/message.h"
#include "hub/route.h"

static inline struct hub_message *msg_new(void)
{
	struct hub_message *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	return m;
}

static inline void msg_set_sys(struct hub_message *m, enum msg_sys s, const char *v)
{
	free(m->sys[s]);
	m->sys[s] = v ? strdup(v) : NULL;
}

/* value NULL: the property is present without a value. */
static inline void msg_add_prop(struct hub_message *m, const char *k, const char *v)
{
	m->props = realloc(m->props, (m->n_props + 1) * sizeof(*m->props));
	assert_non_null(m->props);
	m->props[m->n_props].key = strdup(k);
	m->props[m->n_props].value = v ? strdup(v) : NULL;
	m->n_props++;
}

static inline void msg_set_body(struct hub_message *m, const void *body, size_t len)
{
	free(m->body);
	m->body = malloc(len ? len : 1);
	memcpy(m->body, body, len);
	m->body_len = len;
}

/* A JSON message (application/json, utf-8) with this body. */
static inline void msg_set_json(struct hub_message *m, const char *json)
{
	msg_set_sys(m, MSG_SYS_CONTENT_TYPE, "application/json");
	msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "utf-8");
	msg_set_body(m, json, strlen(json));
}

/* A message as module `mod` sends it on output `out` (NULL: device telemetry). */
static inline struct hub_message *msg_from(const char *mod, const char *out)
{
	struct hub_message *m = msg_new();
	msg_set_sys(m, MSG_SYS_CONNECTION_DEVICE_ID, "dev1");
	if (mod)
		msg_set_sys(m, MSG_SYS_CONNECTION_MODULE_ID, mod);
	if (out)
		msg_set_sys(m, MSG_SYS_OUTPUT_NAME, out);
	return m;
}

static inline struct route *must_parse(const char *text)
{
	struct route *r = NULL;
	struct berr err = {0};
	if (route_parse(text, &r, &err) < 0)
		fail_msg("route `%s` refused: %s", text, err.msg);
	return r;
}

/* Parses a route that must be refused; returns the error message. */
static inline const char *must_refuse(const char *text)
{
	static struct berr err;
	struct route *r = NULL;
	memset(&err, 0, sizeof(err));
	if (route_parse(text, &r, &err) == 0) {
		route_free(r);
		fail_msg("route `%s` was accepted", text);
	}
	assert_null(r);
	return err.msg;
}

static inline bool route_text_matches(const char *text, const struct hub_message *m)
{
	struct route *r = must_parse(text);
	bool ok = route_matches(r, m);
	route_free(r);
	return ok;
}

enum { U = -1, F = 0, T = 1 };

/* The value of a condition: T when it routes, F when NOT (condition)
 * routes, U (undefined, or not a bool) otherwise. */
static inline int eval3(const char *cond, const struct hub_message *m)
{
	char text[ROUTE_TEXT_MAX + 64];
	snprintf(text, sizeof(text), "FROM /* WHERE %s INTO $upstream", cond);
	if (route_text_matches(text, m))
		return T;
	snprintf(text, sizeof(text), "FROM /* WHERE NOT (%s) INTO $upstream", cond);
	struct route *r = NULL;
	struct berr err;
	if (route_parse(text, &r, &err) < 0)
		return U; /* not a bool: it can only be undefined as a condition */
	bool neg = route_matches(r, m);
	route_free(r);
	return neg ? F : U;
}

/* The error for a condition that must be refused. */
static inline const char *cond_refused(const char *cond)
{
	static char text[ROUTE_TEXT_MAX + 64];
	snprintf(text, sizeof(text), "FROM /* WHERE %s INTO $upstream", cond);
	return must_refuse(text);
}

#define assert_eval(cond, m, want)                                                                 \
	do {                                                                                       \
		int got_ = eval3((cond), (m));                                                     \
		if (got_ != (want))                                                                \
			fail_msg("`%s`: got %d, want %d", (cond), got_, (want));                   \
	} while (0)

#define assert_contains(haystack, needle)                                                          \
	do {                                                                                       \
		const char *h_ = (haystack);                                                       \
		if (!strstr(h_, (needle)))                                                         \
			fail_msg("\"%s\" does not contain \"%s\"", h_, (needle));                  \
	} while (0)

#endif
