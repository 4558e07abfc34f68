#include "agent/jpath.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

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

static int member(yajl_val obj, const char *key, const struct jpath *path, bool required,
		  yajl_val *v, struct jpath *vpath, struct berr *err)
{
	jpath_key(vpath, path, key);
	*v = NULL;
	if (obj && YAJL_IS_OBJECT(obj))
		for (size_t i = 0; i < obj->u.object.len; i++)
			if (!strcmp(obj->u.object.keys[i], key))
				*v = obj->u.object.values[i];
	/* An explicit null is treated as absent, as the IoT Edge tools emit it. */
	if (*v && YAJL_IS_NULL(*v))
		*v = NULL;
	if (!*v && required)
		return berr_set(err, 0, "%s: required but missing", vpath->s);
	return 0;
}

int jp_obj(yajl_val obj, const char *key, const struct jpath *path, bool required, yajl_val *out,
	   struct berr *err)
{
	struct jpath p;
	yajl_val v;
	*out = NULL;
	if (member(obj, key, path, required, &v, &p, err) < 0)
		return -1;
	if (v && !YAJL_IS_OBJECT(v))
		return berr_set(err, 0, "%s: expected an object", p.s);
	*out = v;
	return 0;
}

int jp_array(yajl_val obj, const char *key, const struct jpath *path, bool required, yajl_val *out,
	     struct berr *err)
{
	struct jpath p;
	yajl_val v;
	*out = NULL;
	if (member(obj, key, path, required, &v, &p, err) < 0)
		return -1;
	if (v && !YAJL_IS_ARRAY(v))
		return berr_set(err, 0, "%s: expected an array", p.s);
	*out = v;
	return 0;
}

int jp_str(yajl_val obj, const char *key, const struct jpath *path, bool required, size_t max_len,
	   const char **out, struct berr *err)
{
	struct jpath p;
	yajl_val v;
	if (member(obj, key, path, required, &v, &p, err) < 0)
		return -1;
	if (!v)
		return 0;
	if (!YAJL_IS_STRING(v))
		return berr_set(err, 0, "%s: expected a string", p.s);
	if (max_len && strlen(v->u.string) > max_len)
		return berr_set(err, 0, "%s: longer than %zu characters", p.s, max_len);
	*out = v->u.string;
	return 0;
}

int jp_int(yajl_val obj, const char *key, const struct jpath *path, bool required, int64_t min,
	   int64_t max, int64_t *out, struct berr *err)
{
	struct jpath p;
	yajl_val v;
	if (member(obj, key, path, required, &v, &p, err) < 0)
		return -1;
	if (!v)
		return 0;
	if (!YAJL_IS_INTEGER(v))
		return berr_set(err, 0, "%s: expected an integer", p.s);
	long long n = YAJL_GET_INTEGER(v);
	if (n < min || n > max)
		return berr_set(err, 0, "%s: %lld is outside %lld..%lld", p.s, n, (long long)min,
				(long long)max);
	*out = n;
	return 0;
}

int jp_bool(yajl_val obj, const char *key, const struct jpath *path, bool required, bool *out,
	    struct berr *err)
{
	struct jpath p;
	yajl_val v;
	if (member(obj, key, path, required, &v, &p, err) < 0)
		return -1;
	if (!v)
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return berr_set(err, 0, "%s: expected true or false", p.s);
	*out = YAJL_IS_TRUE(v);
	return 0;
}

int jp_strv(yajl_val v, const struct jpath *path, bool allow_string, size_t max_items,
	    size_t max_len, char ***out, struct berr *err)
{
	*out = NULL;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	size_t n;
	if (YAJL_IS_STRING(v) && allow_string)
		n = 1;
	else if (YAJL_IS_ARRAY(v))
		n = v->u.array.len;
	else
		return berr_set(err, 0, "%s: expected an array of strings", path->s);
	if (n > max_items)
		return berr_set(err, 0, "%s: more than %zu entries", path->s, max_items);
	cleanup_strv char **vec = calloc(n + 1, sizeof(*vec));
	if (!vec)
		return berr_set(err, ENOMEM, "%s", path->s);
	for (size_t i = 0; i < n; i++) {
		yajl_val e = YAJL_IS_STRING(v) ? v : v->u.array.values[i];
		struct jpath ep;
		jpath_index(&ep, path, i);
		if (!YAJL_IS_STRING(e))
			return berr_set(err, 0, "%s: expected a string", ep.s);
		if (strlen(e->u.string) > max_len)
			return berr_set(err, 0, "%s: longer than %zu characters", ep.s, max_len);
		if (!(vec[i] = strdup(e->u.string)))
			return berr_set(err, ENOMEM, "%s", ep.s);
	}
	*out = take_ptr(vec);
	return 0;
}
