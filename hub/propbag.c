#include "hub/propbag.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/encoding.h"

static int sys_from_key(const char *key)
{
	for (int s = 0; s < MSG_SYS_COUNT; s++) {
		const char *k = msg_sys_bag_key((enum msg_sys)s);
		if (k && !strcmp(k, key))
			return s;
	}
	return -1;
}

static int set_app_prop(struct hub_message *m, char *key, char *value, struct berr *err)
{
	for (size_t i = 0; i < m->n_props; i++) {
		if (!strcmp(m->props[i].key, key)) {
			free(m->props[i].value);
			m->props[i].value = value;
			free(key);
			return 0;
		}
	}
	if (m->n_props == MSG_MAX_PROPS) {
		free(key);
		free(value);
		return berr_set(err, 0, "more than %d application properties", MSG_MAX_PROPS);
	}
	struct msg_prop *p = realloc(m->props, (m->n_props + 1) * sizeof(*p));
	if (!p) {
		free(key);
		free(value);
		return berr_set(err, ENOMEM, "property bag");
	}
	m->props = p;
	m->props[m->n_props].key = key;
	m->props[m->n_props].value = value;
	m->n_props++;
	return 0;
}

/* Decodes one percent-encoded token into a new string of at most max bytes. */
static char *decode_token(const char *s, size_t len, size_t max, const char *what, struct berr *err)
{
	/* Decoding never lengthens, so len + 1 bytes always suffice. */
	if (len > max * 3) {
		berr_set(err, 0, "%s longer than %zu bytes", what, max);
		return NULL;
	}
	char *out = malloc(len + 1);
	if (!out) {
		berr_set(err, ENOMEM, "property bag");
		return NULL;
	}
	int n = url_decode(s, len, out, len + 1, false);
	if (n < 0) {
		free(out);
		berr_set(err, 0, "%s \"%.*s\" has a bad percent-escape or an encoded NUL", what,
			 (int)(len > 64 ? 64 : len), s);
		return NULL;
	}
	if ((size_t)n > max) {
		free(out);
		berr_set(err, 0, "%s longer than %zu bytes", what, max);
		return NULL;
	}
	return out;
}

static int parse_pair(const char *s, size_t len, struct hub_message *m, struct berr *err)
{
	const char *eq = memchr(s, '=', len);
	size_t klen = eq ? (size_t)(eq - s) : len;
	if (klen == 0)
		return berr_set(err, 0, "property with an empty name");
	const char *v = eq ? eq + 1 : s + len;
	size_t vlen = eq ? len - klen - 1 : 0;
	if (memchr(v, '=', vlen))
		return berr_set(err, 0, "'=' inside the value of \"%.*s\"",
				(int)(klen > 64 ? 64 : klen), s);
	cleanup_free char *key = decode_token(s, klen, PROPBAG_KEY_MAX, "property name", err);
	if (!key)
		return -1;
	char *value = decode_token(v, vlen, PROPBAG_VALUE_MAX, "property value", err);
	if (!value)
		return berr_wrap(err, "property %s", key);
	int sys = sys_from_key(key);
	if (sys == MSG_SYS_CONNECTION_DEVICE_ID || sys == MSG_SYS_CONNECTION_MODULE_ID) {
		free(value);
		return 0;
	}
	if (sys >= 0) {
		free(m->sys[sys]);
		m->sys[sys] = value;
		return 0;
	}
	char *k = key;
	key = NULL;
	return set_app_prop(m, k, value, err);
}

int propbag_parse(const char *bag, size_t len, struct hub_message *m, struct berr *err)
{
	const char *slash = memchr(bag, '/', len);
	if (slash)
		len = (size_t)(slash - bag);
	size_t i = 0;
	while (i < len) {
		const char *amp = memchr(bag + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - bag) : len;
		if (end > i && parse_pair(bag + i, end - i, m, err) < 0)
			return -1;
		i = end + 1;
	}
	return 0;
}

static int append_encoded(struct strbuf *out, const char *s)
{
	size_t len = strlen(s);
	cleanup_free char *enc = malloc(len * 3 + 1);
	if (!enc)
		return -1;
	int n = url_encode(s, len, enc, len * 3 + 1);
	return n < 0 ? -1 : strbuf_append(out, enc, (size_t)n);
}

static int append_pair(struct strbuf *out, bool *first, const char *key, const char *value)
{
	if (!*first && strbuf_append(out, "&", 1) < 0)
		return -1;
	*first = false;
	if (append_encoded(out, key) < 0 || strbuf_append(out, "=", 1) < 0)
		return -1;
	return append_encoded(out, value);
}

int propbag_write(const struct hub_message *m, unsigned skip, struct strbuf *out)
{
	size_t start = out->len;
	bool first = true;
	int rc = 0;
	for (int s = 0; s < MSG_SYS_COUNT && rc == 0; s++) {
		const char *key = msg_sys_bag_key((enum msg_sys)s);
		if (m->sys[s] && key && !(skip & (1u << s)))
			rc = append_pair(out, &first, key, m->sys[s]);
	}
	for (size_t i = 0; i < m->n_props && rc == 0; i++)
		rc = append_pair(out, &first, m->props[i].key, m->props[i].value);
	if (rc < 0) {
		out->len = start;
		if (out->buf)
			out->buf[start] = '\0';
	}
	return rc;
}
