#include "agent/jpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"

static bool key_is_plain(const char *key)
{
	if (!*key)
		return false;
	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '$' || *p == '-'))
			return false;
	return true;
}

void jpath_root(struct jpath *out)
{
	snprintf(out->s, sizeof(out->s), "$");
}

void jpath_key(struct jpath *out, const struct jpath *parent, const char *key)
{
	char tmp[JPATH_MAX];
	/* Keys come from hostile documents: show at most 64 bytes of one. */
	if (key_is_plain(key))
		snprintf(tmp, sizeof(tmp), "%s.%.64s", parent->s, key);
	else
		snprintf(tmp, sizeof(tmp), "%s['%.64s']", parent->s, key);
	memcpy(out->s, tmp, sizeof(tmp));
}

void jpath_index(struct jpath *out, const struct jpath *parent, size_t i)
{
	char tmp[JPATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s[%zu]", parent->s, i);
	memcpy(out->s, tmp, sizeof(tmp));
}

/* Member key of obj into *out by its kind (const char *, int64_t, bool or
 * yajl_val), checked against max_len (strings) or min..max (integers).
 * Absent, *out is left alone, but for objects and arrays it becomes NULL. */
static int get(yajl_val obj, const char *key, const struct jpath *path, bool required,
	       enum json_kind kind, int64_t min, int64_t max, void *out, struct berr *err)
{
	struct jpath p;
	jpath_key(&p, path, key);
	yajl_val v = NULL;
	if (obj && YAJL_IS_OBJECT(obj))
		for (size_t i = 0; i < obj->u.object.len; i++)
			if (!strcmp(obj->u.object.keys[i], key))
				v = obj->u.object.values[i];
	/* An explicit null is treated as absent, as the IoT Edge tools emit it. */
	if (v && YAJL_IS_NULL(v))
		v = NULL;
	if (kind == JSON_OBJECT || kind == JSON_ARRAY)
		*(yajl_val *)out = NULL;
	if (!v && required)
		return berr_set(err, 0, "%s: required but missing", p.s);
	if (!v)
		return 0;
	if (!json_is(v, kind))
		return berr_set(err, 0, "%s: expected %s", p.s, json_kind_name(kind));
	if (kind == JSON_STRING) {
		if (max && strlen(v->u.string) > (uint64_t)max)
			return berr_set(err, 0, "%s: longer than %lld characters", p.s,
					(long long)max);
		*(const char **)out = v->u.string;
	} else if (kind == JSON_INTEGER) {
		long long n = YAJL_GET_INTEGER(v);
		if (n < min || n > max)
			return berr_set(err, 0, "%s: %lld is outside %lld..%lld", p.s, n,
					(long long)min, (long long)max);
		*(int64_t *)out = n;
	} else if (kind == JSON_BOOL) {
		*(bool *)out = YAJL_IS_TRUE(v);
	} else {
		*(yajl_val *)out = v;
	}
	return 0;
}

int jp_obj(yajl_val obj, const char *key, const struct jpath *path, bool required, yajl_val *out,
	   struct berr *err)
{
	return get(obj, key, path, required, JSON_OBJECT, 0, 0, out, err);
}

int jp_array(yajl_val obj, const char *key, const struct jpath *path, bool required, yajl_val *out,
	     struct berr *err)
{
	return get(obj, key, path, required, JSON_ARRAY, 0, 0, out, err);
}

int jp_str(yajl_val obj, const char *key, const struct jpath *path, bool required, size_t max_len,
	   const char **out, struct berr *err)
{
	return get(obj, key, path, required, JSON_STRING, 0, (int64_t)max_len, out, err);
}

int jp_int(yajl_val obj, const char *key, const struct jpath *path, bool required, int64_t min,
	   int64_t max, int64_t *out, struct berr *err)
{
	return get(obj, key, path, required, JSON_INTEGER, min, max, out, err);
}

int jp_bool(yajl_val obj, const char *key, const struct jpath *path, bool required, bool *out,
	    struct berr *err)
{
	return get(obj, key, path, required, JSON_BOOL, 0, 0, out, err);
}

int jp_strv(yajl_val v, const struct jpath *path, bool allow_string, size_t max_items,
	    size_t max_len, char ***out, struct berr *err)
{
	return json_strv(v, path->s, allow_string, max_items, max_len, out, err);
}
