/* Route parser and evaluator on arbitrary input.
 *
 * Input: [mode byte][route or condition text] NUL [message body]. Mode bit 0
 * set: the text is a condition, wrapped as "FROM /" "* WHERE <text> INTO $upstream"
 * (so the fuzzer spends its time in expressions). A route that compiles is
 * evaluated against messages built around the body (JSON in UTF-8, UTF-16
 * and UTF-32, properties whose values come from the body) and matched in a
 * table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/message.h"
#include "hub/route.h"

static void set(char **slot, const char *v)
{
	*slot = v ? strdup(v) : NULL;
}

static void add_prop(struct hub_message *m, const char *k, const char *v)
{
	m->props = realloc(m->props, (m->n_props + 1) * sizeof(*m->props));
	set(&m->props[m->n_props].key, k);
	set(&m->props[m->n_props].value, v);
	m->n_props++;
}

static struct hub_message *message(const uint8_t *body, size_t n, const char *encoding)
{
	struct hub_message *m = calloc(1, sizeof(*m));
	set(&m->sys[MSG_SYS_CONNECTION_DEVICE_ID], "dev");
	set(&m->sys[MSG_SYS_CONNECTION_MODULE_ID], "sensor");
	set(&m->sys[MSG_SYS_OUTPUT_NAME], "out");
	set(&m->sys[MSG_SYS_MESSAGE_ID], "mid");
	set(&m->sys[MSG_SYS_CONTENT_TYPE], "application/json");
	set(&m->sys[MSG_SYS_CONTENT_ENCODING], encoding);
	/* The body as a property value too (up to its first NUL). */
	char *text = strndup((const char *)body, n);
	add_prop(m, "a", "1");
	add_prop(m, "b", "x");
	add_prop(m, "key1", "value1");
	add_prop(m, "null_value", NULL);
	add_prop(m, "t", text);
	add_prop(m, "$body.x", text);
	free(text);
	m->body = malloc(n ? 4 * n : 1);
	size_t width = strcmp(encoding, "utf-16") == 0	 ? 2
		       : strcmp(encoding, "utf-32") == 0 ? 4
							 : 1;
	if (width > 1) {
		memset(m->body, 0, width * n);
		for (size_t i = 0; i < n; i++)
			m->body[width * i] = body[i];
		m->body_len = width * n;
	} else {
		memcpy(m->body, body, n);
		m->body_len = n;
	}
	return m;
}

static void count(const struct route_hit *hit, void *arg)
{
	(void)hit;
	++*(size_t *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int wrap = data[0] & 1;
	data++, size--;
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	const uint8_t *body = nul ? nul + 1 : data + size;
	size_t blen = nul ? size - tlen - 1 : 0;

	char *text = malloc(tlen + 64);
	if (wrap)
		snprintf(text, tlen + 64, "FROM /* WHERE %.*s INTO $upstream", (int)tlen,
			 (const char *)data);
	else {
		memcpy(text, data, tlen);
		text[tlen] = '\0';
	}

	struct route *r = NULL;
	struct berr err;
	if (route_parse(text, &r, &err) == 0) {
		struct hub_message *m1 = message(body, blen, "utf-8");
		struct hub_message *m2 = message(body, blen, "utf-16");
		struct hub_message *m4 = message(body, blen, "UTF-32");
		struct hub_message m3 = {0}; /* device telemetry, nothing set */
		(void)route_matches(r, m1);
		(void)route_matches(r, m2);
		(void)route_matches(r, &m3);
		(void)route_matches(r, m4);
		hub_message_free(m4);
		(void)route_get_sink(r);

		const struct route_def defs[] = {
		    {"fuzz", text, 3, 60},
		    {"again", text, 1, 0},
		    {"all", "FROM /* INTO $upstream", ROUTE_DEFAULT_PRIORITY, 10},
		};
		struct route_table *t = NULL;
		if (route_table_build(defs, 3, &t, &err) == 0) {
			size_t hits = 0;
			size_t n = route_table_match(t, m1, count, &hits);
			if (n != hits || n < 1)
				abort();
			route_table_set_default_ttl(t, 100);
			(void)route_table_match(t, m2, count, &hits);
			route_table_free(t);
		} else {
			abort(); /* the same text compiled above */
		}
		hub_message_free(m1);
		hub_message_free(m2);
		route_free(r);
	} else if (strncmp(err.msg, "position ", 9) != 0 &&
		   strcmp(err.msg, "route is longer than 4096 bytes") != 0) {
		abort(); /* every refusal names a position */
	}
	free(text);
	return 0;
}
