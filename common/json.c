#include "common/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fs.h"

/* yajl_tree recurses once per nesting level; count the depth first so hostile
 * input cannot exhaust the stack. Strings are skipped with their escapes.
 * *values gets an upper bound of the values the tree will hold (every value
 * but the first follows a ',' or opens a container). */
static int json_depth_ok(const char *buf, size_t len, size_t *values)
{
	int depth = 0;
	bool in_str = false;
	size_t n = 1;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[') {
			n++;
			if (++depth > JSON_MAX_DEPTH)
				return 0;
		} else if (c == '}' || c == ']')
			depth--;
		else if (c == ',')
			n++;
	}
	*values = n;
	return 1;
}

int json_parse_limited(const char *buf, size_t len, size_t max_len, size_t max_values,
		       const char *what, yajl_val *out, struct berr *err)
{
	*out = NULL;
	if (len > max_len)
		return berr_set(err, 0, "%s: %zu bytes is over the limit of %zu", what, len,
				max_len);
	if (memchr(buf, '\0', len))
		return berr_set(err, 0, "%s: contains a NUL byte", what);
	size_t values;
	if (!json_depth_ok(buf, len, &values))
		return berr_set(err, 0, "%s: nested deeper than %d levels", what, JSON_MAX_DEPTH);
	if (values > max_values)
		return berr_set(err, 0, "%s: more than %zu values", what, max_values);
	cleanup_free char *copy = malloc(len + 1);
	if (!copy)
		return berr_set(err, ENOMEM, "%s", what);
	memcpy(copy, buf, len);
	copy[len] = '\0';
	char ebuf[256] = "";
	yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	if (!v) {
		/* yajl's message spans lines; keep the first. */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		return berr_set(err, 0, "%s: malformed JSON: %s", what,
				ebuf[0] ? ebuf : "parse error");
	}
	*out = v;
	return 0;
}

int json_parse(const char *buf, size_t len, size_t max_len, const char *what, yajl_val *out,
	       struct berr *err)
{
	return json_parse_limited(buf, len, max_len, SIZE_MAX, what, out, err);
}

int json_parse_file(const char *path, size_t max_len, yajl_val *out, struct berr *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (fs_read_file(path, max_len, &data, &len, err) < 0)
		return -1;
	return json_parse(data, len, max_len, path, out, err);
}

void *json_parse_new(const char *buf, size_t len, size_t max_len, const char *what, size_t size,
		     int (*fill)(yajl_val doc, void *obj, const void *arg, struct berr *err),
		     const void *arg, void (*free_obj)(void *obj), struct berr *err)
{
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse(buf, len, max_len, what, &doc, err) < 0)
		return NULL;
	void *obj = calloc(1, size);
	if (!obj) {
		berr_set(err, ENOMEM, "%s", what);
		return NULL;
	}
	if (fill(doc, obj, arg, err) < 0) {
		free_obj(obj);
		berr_wrap(err, "%s", what);
		return NULL;
	}
	return obj;
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (!obj || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *json_unknown_key(yajl_val obj, const char *const *known, size_t *i)
{
	while (obj && YAJL_IS_OBJECT(obj) && *i < obj->u.object.len) {
		const char *k = obj->u.object.keys[(*i)++];
		const char *const *p = known;
		while (*p && strcmp(*p, k))
			p++;
		if (!*p)
			return k;
	}
	return NULL;
}

const char *json_str(yajl_val v)
{
	return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool json_is(yajl_val v, enum json_kind kind)
{
	switch (kind) {
	case JSON_STRING:
		return YAJL_IS_STRING(v);
	case JSON_INTEGER:
		return YAJL_IS_INTEGER(v);
	case JSON_BOOL:
		return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
	case JSON_OBJECT:
		return YAJL_IS_OBJECT(v);
	case JSON_ARRAY:
		return YAJL_IS_ARRAY(v);
	}
	return false;
}

const char *json_kind_name(enum json_kind kind)
{
	static const char *const names[] = {
	    [JSON_STRING] = "a string",	   [JSON_INTEGER] = "an integer",
	    [JSON_BOOL] = "true or false", [JSON_OBJECT] = "an object",
	    [JSON_ARRAY] = "an array",
	};
	return names[kind];
}

/* Member key of obj into *out by its kind (const char *, int64_t, bool or
 * yajl_val): absent, *out is left alone, but for strings, objects and
 * arrays it becomes NULL. */
static int get(yajl_val obj, const char *key, const char *path, bool required, enum json_kind kind,
	       void *out, struct berr *err)
{
	yajl_val v = json_get(obj, key);
	if (!v && required)
		return berr_set(err, 0, "%s.%s: required but missing", path, key);
	if (v && !json_is(v, kind))
		return berr_set(err, 0, "%s.%s: expected %s", path, key, json_kind_name(kind));
	if (kind == JSON_STRING)
		*(const char **)out = v ? v->u.string : NULL;
	else if (kind == JSON_OBJECT || kind == JSON_ARRAY)
		*(yajl_val *)out = v;
	else if (v && kind == JSON_INTEGER)
		*(int64_t *)out = YAJL_GET_INTEGER(v);
	else if (v)
		*(bool *)out = YAJL_IS_TRUE(v);
	return 0;
}

int json_expect_object(yajl_val v, const char *path, struct berr *err)
{
	return YAJL_IS_OBJECT(v) ? 0 : berr_set(err, 0, "%s: expected an object", path);
}

int json_get_str(yajl_val obj, const char *key, const char *path, bool required, const char **out,
		 struct berr *err)
{
	*out = NULL;
	return get(obj, key, path, required, JSON_STRING, out, err);
}

int json_get_i64(yajl_val obj, const char *key, const char *path, bool required, int64_t *out,
		 struct berr *err)
{
	return get(obj, key, path, required, JSON_INTEGER, out, err);
}

int json_get_bool(yajl_val obj, const char *key, const char *path, bool required, bool *out,
		  struct berr *err)
{
	return get(obj, key, path, required, JSON_BOOL, out, err);
}

int json_get_obj(yajl_val obj, const char *key, const char *path, bool required, yajl_val *out,
		 struct berr *err)
{
	*out = NULL;
	return get(obj, key, path, required, JSON_OBJECT, out, err);
}

int json_get_array(yajl_val obj, const char *key, const char *path, bool required, yajl_val *out,
		   struct berr *err)
{
	*out = NULL;
	return get(obj, key, path, required, JSON_ARRAY, out, err);
}

int json_strv(yajl_val v, const char *what, bool allow_string, size_t max_items, size_t max_len,
	      char ***out, struct berr *err)
{
	*out = NULL;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	bool one = YAJL_IS_STRING(v) && allow_string;
	if (!one && !YAJL_IS_ARRAY(v))
		return berr_set(err, 0, "%s: expected an array of strings", what);
	size_t n = one ? 1 : v->u.array.len;
	if (n > max_items)
		return berr_set(err, 0, "%s: %zu entries is over the limit of %zu", what, n,
				max_items);
	cleanup_strv char **vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return berr_set(err, ENOMEM, "%s", what);
	for (size_t i = 0; i < n; i++) {
		const char *s = json_str(one ? v : v->u.array.values[i]);
		if (!s)
			return berr_set(err, 0, "%s[%zu]: expected a string", what, i);
		if (max_len && strlen(s) > max_len)
			return berr_set(err, 0, "%s[%zu]: longer than %zu characters", what, i,
					max_len);
		if (!(vec[i] = strdup(s)))
			return berr_set(err, ENOMEM, "%s", what);
	}
	*out = take_ptr(vec);
	return 0;
}

int json_get_strv(yajl_val obj, const char *key, const char *path, size_t max_items, size_t max_len,
		  char ***out, struct berr *err)
{
	char what[256];
	snprintf(what, sizeof(what), "%s.%s", path, key);
	return json_strv(json_get(obj, key), what, false, max_items, max_len, out, err);
}

yajl_gen json_gen_new(bool pretty)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return NULL;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	if (pretty) {
		yajl_gen_config(g, yajl_gen_beautify, 1);
		yajl_gen_config(g, yajl_gen_indent_string, "  ");
	}
	return g;
}

int json_get_fields(yajl_val obj, const char *path, bool required, const struct json_field *table,
		    size_t n, void *rec, struct berr *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct json_field *f = &table[i];
		char *field = (char *)rec + f->off;
		if (!f->size) {
			if (json_get_i64(obj, f->key, path, required, (int64_t *)field, err) < 0)
				return -1;
			continue;
		}
		const char *s;
		if (json_get_str(obj, f->key, path, required, &s, err) < 0)
			return -1;
		if (s && strlen(s) >= f->size)
			return berr_set(err, 0, "%s.%s: longer than %zu bytes", path, f->key,
					f->size - 1);
		if (s)
			memcpy(field, s, strlen(s) + 1);
	}
	return 0;
}

int json_gen_str(yajl_gen g, const char *s)
{
	return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok ? 0
											     : -1;
}

int json_gen_key_str(yajl_gen g, const char *key, const char *value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	if (!value)
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
	return json_gen_str(g, value);
}

int json_gen_key_int(yajl_gen g, const char *key, long long value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	return yajl_gen_integer(g, value) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_key_bool(yajl_gen g, const char *key, bool value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	return yajl_gen_bool(g, value) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_key_strv(yajl_gen g, const char *key, char *const *v)
{
	if (json_gen_str(g, key) < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; v && v[i]; i++)
		if (json_gen_str(g, v[i]) < 0)
			return -1;
	return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_fields(yajl_gen g, const struct json_field *table, size_t n, const void *rec)
{
	for (size_t i = 0; i < n; i++) {
		const char *field = (const char *)rec + table[i].off;
		if ((table[i].size
			 ? json_gen_key_str(g, table[i].key, field)
			 : json_gen_key_int(g, table[i].key, *(const int64_t *)field)) < 0)
			return -1;
	}
	return 0;
}

int json_gen_val(yajl_gen g, yajl_val v)
{
	yajl_gen_status st = yajl_gen_status_ok;
	if (!v || YAJL_IS_NULL(v))
		st = yajl_gen_null(g);
	else if (YAJL_IS_TRUE(v))
		st = yajl_gen_bool(g, 1);
	else if (YAJL_IS_FALSE(v))
		st = yajl_gen_bool(g, 0);
	else if (YAJL_IS_STRING(v))
		st = yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
	else if (YAJL_IS_NUMBER(v))
		/* The original text keeps integers exact and reals as written. */
		st = yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	else if (YAJL_IS_OBJECT(v)) {
		if (yajl_gen_map_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (json_gen_str(g, v->u.object.keys[i]) < 0 ||
			    json_gen_val(g, v->u.object.values[i]) < 0)
				return -1;
		}
		st = yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		if (yajl_gen_array_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < v->u.array.len; i++)
			if (json_gen_val(g, v->u.array.values[i]) < 0)
				return -1;
		st = yajl_gen_array_close(g);
	}
	return st == yajl_gen_status_ok ? 0 : -1;
}

char *json_gen_finish(yajl_gen g, size_t *len)
{
	const unsigned char *buf;
	size_t n;
	if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
		return NULL;
	char *out = malloc(n + 1);
	if (out) {
		memcpy(out, buf, n);
		out[n] = '\0';
		if (len)
			*len = n;
	}
	return out;
}

char *json_gen_done(yajl_gen g, size_t *len)
{
	char *out = json_gen_finish(g, len);
	yajl_gen_free(g);
	return out;
}

char *json_gen_done_if(yajl_gen g, bool ok, size_t *len)
{
	if (ok)
		return json_gen_done(g, len);
	if (g)
		yajl_gen_free(g);
	return NULL;
}

int json_gen_write_file(yajl_gen g, const char *path, mode_t mode, const char *what,
			struct berr *err)
{
	size_t len = 0;
	cleanup_free char *text = json_gen_done(g, &len);
	if (!text)
		return berr_set(err, ENOMEM, "%s", what);
	if (fs_write_file_atomic(path, text, len, mode, err) < 0)
		return berr_wrap(err, "%s", what);
	return 0;
}
