#include "agent/redact.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/json.h"

#define REDACT_JSON_MAX (16 * 1024 * 1024)

static const char *const secret_words[] = {"key",
					   "password",
					   "passwd",
					   "pwd",
					   "token",
					   "secret",
					   "sas",
					   "signature",
					   "connectionstring",
					   "connection_string",
					   "credential"};

bool redact_key_is_secret(const char *key, size_t len)
{
	for (size_t w = 0; w < ARRAY_SIZE(secret_words); w++) {
		size_t wl = strlen(secret_words[w]);
		for (size_t i = 0; i + wl <= len; i++)
			if (!strncasecmp(key + i, secret_words[w], wl))
				return true;
	}
	return false;
}

void redact_secrets_free(struct redact_secrets *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

static void keep_one(struct redact_secrets *s, const char *v, size_t len)
{
	if (len < REDACT_MIN_LEN)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == len && !memcmp(s->v[i], v, len))
			return;
	char *copy = s->n < REDACT_SECRETS_MAX ? strndup(v, len) : NULL;
	if (!copy) {
		s->overflow = true;
		return;
	}
	s->v[s->n++] = copy;
}

/* The value, and its URL-encoded form (as it goes in a query or a token). */
static void keep(struct redact_secrets *s, const char *v, size_t len)
{
	keep_one(s, v, len);
	char enc[1024];
	size_t o = 0;
	bool differs = false;
	for (size_t i = 0; i < len && o + 4 < sizeof(enc); i++) {
		unsigned char c = (unsigned char)v[i];
		if (isalnum(c) || strchr("-._~", c)) {
			enc[o++] = (char)c;
		} else {
			static const char hex[] = "0123456789ABCDEF";
			enc[o++] = '%';
			enc[o++] = hex[c >> 4];
			enc[o++] = hex[c & 15];
			differs = true;
		}
	}
	if (differs && o + 4 < sizeof(enc))
		keep_one(s, enc, o);
}

static bool looks_secret(const char *v)
{
	return strstr(v, "SharedAccessKey=") || strstr(v, "SharedAccessSignature");
}

/* createOptions' Env entries "NAME=value" whose names say secret. */
static void keep_env_of_create_options(struct redact_secrets *s, const char *text)
{
	yajl_val doc = NULL;
	struct berr err;
	if (json_parse(text, strlen(text), REDACT_JSON_MAX, "createOptions", &doc, &err) < 0)
		return;
	yajl_val env = json_get(doc, "Env");
	for (size_t i = 0; env && YAJL_IS_ARRAY(env) && i < env->u.array.len; i++) {
		const char *e = json_str(env->u.array.values[i]);
		const char *eq = e ? strchr(e, '=') : NULL;
		if (eq && (redact_key_is_secret(e, (size_t)(eq - e)) || looks_secret(eq + 1)))
			keep(s, eq + 1, strlen(eq + 1));
	}
	yajl_tree_free(doc);
}

static int walk(yajl_gen g, yajl_val v, const char *key, bool secret, struct redact_secrets *s)
{
	if (YAJL_IS_OBJECT(v)) {
		if (yajl_gen_map_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];
			/* A secret name covers its own value, and the "value" of an
			 * env entry under it; not the addresses and user names
			 * beside a password. */
			bool inner =
			    redact_key_is_secret(k, strlen(k)) || (secret && !strcmp(k, "value"));
			if (json_gen_str(g, k) < 0 ||
			    walk(g, v->u.object.values[i], k, inner, s) < 0)
				return -1;
		}
		return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
	}
	if (YAJL_IS_ARRAY(v)) {
		if (yajl_gen_array_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < v->u.array.len; i++)
			if (walk(g, v->u.array.values[i], key, secret, s) < 0)
				return -1;
		return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
	}
	const char *str = json_str(v);
	if (!str)
		return json_gen_val(g, v);
	if (secret || looks_secret(str)) {
		keep(s, str, strlen(str));
		return json_gen_str(g, REDACTED);
	}
	if (key && !strncmp(key, "createOptions", 13))
		keep_env_of_create_options(s, str);
	return json_gen_str(g, str);
}

int redact_json(const char *buf, size_t len, const char *what, struct redact_secrets *s,
		struct strbuf *out, struct berr *err)
{
	yajl_val doc = NULL;
	if (json_parse(buf, len, REDACT_JSON_MAX, what, &doc, err) < 0)
		return -1;
	yajl_gen g = json_gen_new(true);
	int rc = g ? walk(g, doc, NULL, false, s) : -1;
	size_t n = 0;
	char *text = json_gen_done_if(g, rc == 0, &n);
	yajl_tree_free(doc);
	if (!text || strbuf_append(out, text, n) < 0) {
		free(text);
		return berr_set(err, ENOMEM, "%s: redacting", what);
	}
	free(text);
	return 0;
}

/* Length of a run of characters a token's signature or a key is made of. */
static size_t token_run(const char *p, const char *end)
{
	size_t n = 0;
	while (p + n < end && (isalnum((unsigned char)p[n]) || strchr("%+/=_.-", p[n])))
		n++;
	return n;
}

int redact_text(const char *text, size_t len, const struct redact_secrets *s, struct strbuf *out)
{
	static const char *const prefixes[] = {"sig=", "SharedAccessKey="};
	const char *end = text + len, *copied = text;
	for (const char *p = text; p < end;) {
		size_t skip = 0;
		const char *keep_prefix = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(prefixes) && !skip; i++) {
			size_t pl = strlen(prefixes[i]);
			if ((size_t)(end - p) > pl && !memcmp(p, prefixes[i], pl) &&
			    token_run(p + pl, end)) {
				keep_prefix = prefixes[i];
				skip = pl + token_run(p + pl, end);
			}
		}
		for (size_t i = 0; i < s->n && !skip; i++) {
			size_t sl = strlen(s->v[i]);
			if (*p == s->v[i][0] && (size_t)(end - p) >= sl && !memcmp(p, s->v[i], sl))
				skip = sl;
		}
		if (!skip) {
			p++;
			continue;
		}
		if (strbuf_append(out, copied, (size_t)(p - copied)) < 0 ||
		    (keep_prefix && strbuf_puts(out, keep_prefix) < 0) ||
		    strbuf_puts(out, REDACTED) < 0)
			return -1;
		p += skip;
		copied = p;
	}
	return strbuf_append(out, copied, (size_t)(end - copied));
}
