#include "hub/twin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"

enum tkind { TK_NULL, TK_TRUE, TK_FALSE, TK_NUM, TK_STR, TK_OBJ, TK_ARR };

/* One JSON value; object members carry their name and their metadata. */
struct tnode {
	char *key;
	enum tkind kind;
	char *text; /* TK_NUM: the number as written; TK_STR: the string */
	struct tnode **kids;
	size_t n;
	int64_t updated_ms;
	int64_t updated_version; /* desired section only */
};

struct section {
	struct tnode *root; /* always TK_OBJ */
	int64_t version;
	bool versioned_meta; /* $lastUpdatedVersion in $metadata (desired) */
};

struct twin {
	char *generation_id;
	struct section desired, reported;
};

static void node_free(struct tnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->text);
	free(n);
}

static struct tnode *node_new(enum tkind kind, const char *key)
{
	struct tnode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	if (key && !(n->key = strdup(key))) {
		free(n);
		return NULL;
	}
	return n;
}

static int node_add(struct tnode *parent, struct tnode *kid)
{
	struct tnode **k = realloc(parent->kids, (parent->n + 1) * sizeof(*k));
	if (!k)
		return -1;
	parent->kids = k;
	parent->kids[parent->n++] = kid;
	return 0;
}

static struct tnode *node_copy(const struct tnode *src)
{
	struct tnode *n = node_new(src->kind, src->key);
	if (!n)
		return NULL;
	n->updated_ms = src->updated_ms;
	n->updated_version = src->updated_version;
	if (src->text && !(n->text = strdup(src->text))) {
		node_free(n);
		return NULL;
	}
	for (size_t i = 0; i < src->n; i++) {
		struct tnode *k = node_copy(src->kids[i]);
		if (!k || node_add(n, k) < 0) {
			node_free(k);
			node_free(n);
			return NULL;
		}
	}
	return n;
}

static ssize_t node_find(const struct tnode *obj, const char *key)
{
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->kids[i]->key, key))
			return (ssize_t)i;
	return -1;
}

static void node_remove(struct tnode *obj, size_t i)
{
	node_free(obj->kids[i]);
	memmove(obj->kids + i, obj->kids + i + 1, (obj->n - i - 1) * sizeof(*obj->kids));
	obj->n--;
}

/* IoT Hub: names are not empty, at most 1 KB, without control characters,
 * '.', '$' or space. */
static bool key_allowed(const char *k)
{
	size_t len = strlen(k);
	if (len == 0 || len > TWIN_KEY_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '.' || *p == '$' || *p == ' ')
			return false;
	return true;
}

static int node_from_json(yajl_val v, const char *key, int depth, bool strict, struct tnode **out,
			  struct berr *err);

/* Converts v and appends it to parent. */
static int add_kid(struct tnode *parent, yajl_val v, const char *key, int depth, bool strict,
		   struct berr *err)
{
	struct tnode *kid;
	if (node_from_json(v, key, depth, strict, &kid, err) < 0)
		return -1;
	if (node_add(parent, kid) < 0) {
		node_free(kid);
		return berr_set(err, ENOMEM, "twin");
	}
	return 0;
}

static enum tkind kind_of(yajl_val v)
{
	if (!v || YAJL_IS_NULL(v))
		return TK_NULL;
	if (YAJL_IS_TRUE(v))
		return TK_TRUE;
	if (YAJL_IS_FALSE(v))
		return TK_FALSE;
	if (YAJL_IS_NUMBER(v))
		return TK_NUM;
	if (YAJL_IS_STRING(v))
		return TK_STR;
	return YAJL_IS_OBJECT(v) ? TK_OBJ : TK_ARR;
}

/* Converts a parsed JSON value. strict: a bad name or too deep an object is
 * an error (patches from modules); otherwise the member is skipped with a log
 * line (the deployment's desired properties). Nulls inside objects stay as
 * TK_NULL: in a patch they delete. */
static int node_from_json(yajl_val v, const char *key, int depth, bool strict, struct tnode **out,
			  struct berr *err)
{
	*out = NULL;
	if (depth > TWIN_MAX_DEPTH)
		return berr_set(err, 0, "nested deeper than %d levels", TWIN_MAX_DEPTH);
	enum tkind kind = kind_of(v);
	struct tnode *n = node_new(kind, key);
	if (!n)
		return berr_set(err, ENOMEM, "twin");
	int rc = 0;
	if (kind == TK_NUM || kind == TK_STR) {
		n->text = strdup(kind == TK_NUM ? v->u.number.r : v->u.string);
		if (!n->text)
			rc = berr_set(err, ENOMEM, "twin");
	} else if (kind == TK_OBJ) {
		for (size_t i = 0; rc == 0 && i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];
			if (key_allowed(k))
				rc = add_kid(n, v->u.object.values[i], k, depth + 1, strict, err);
			else if (strict)
				rc = berr_set(err, 0, "property name \"%.64s\" is not allowed", k);
			else if (k[0] != '$')
				log_warn("twin: skipping desired property \"%.64s\"", k);
		}
	} else if (kind == TK_ARR) {
		for (size_t i = 0; rc == 0 && i < v->u.array.len; i++)
			rc = add_kid(n, v->u.array.values[i], NULL, depth + 1, strict, err);
	}
	if (rc < 0) {
		node_free(n);
		return -1;
	}
	*out = n;
	return 0;
}

static bool node_equal(const struct tnode *a, const struct tnode *b)
{
	if (a->kind != b->kind || a->n != b->n)
		return false;
	if ((a->kind == TK_NUM || a->kind == TK_STR) && strcmp(a->text, b->text))
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (a->kind == TK_ARR) {
			if (!node_equal(a->kids[i], b->kids[i]))
				return false;
		} else {
			ssize_t j = node_find(b, a->kids[i]->key);
			if (j < 0 || !node_equal(a->kids[i], b->kids[j]))
				return false;
		}
	}
	return true;
}

static void node_touch(struct tnode *n, int64_t ms, int64_t version, bool deep)
{
	n->updated_ms = ms;
	n->updated_version = version;
	if (deep && n->kind == TK_OBJ)
		for (size_t i = 0; i < n->n; i++)
			node_touch(n->kids[i], ms, version, true);
}

/* Puts kid in place of target's kid j, or adds it when j < 0; returns kid's
 * index, or -1 (kid freed) when it cannot be added. */
static ssize_t node_put(struct tnode *target, ssize_t j, struct tnode *kid)
{
	if (j >= 0) {
		node_free(target->kids[j]);
		target->kids[j] = kid;
		return j;
	}
	if (node_add(target, kid) < 0) {
		node_free(kid);
		return -1;
	}
	return (ssize_t)target->n - 1;
}

/* RFC 7386 onto an object target; every node the patch reaches gets the new
 * time and version. Nulls in the patch delete; values are copied. */
static int merge(struct tnode *target, const struct tnode *patch, int64_t ms, int64_t version)
{
	for (size_t i = 0; i < patch->n; i++) {
		const struct tnode *p = patch->kids[i];
		ssize_t j = node_find(target, p->key);
		if (p->kind == TK_NULL) {
			if (j >= 0)
				node_remove(target, (size_t)j);
			continue;
		}
		if (p->kind == TK_OBJ) {
			if (j < 0 || target->kids[j]->kind != TK_OBJ) {
				struct tnode *obj = node_new(TK_OBJ, p->key);
				if (!obj)
					return -1;
				j = node_put(target, j, obj);
				if (j < 0)
					return -1;
			}
			if (merge(target->kids[j], p, ms, version) < 0)
				return -1;
			continue;
		}
		struct tnode *copy = node_copy(p);
		if (!copy)
			return -1;
		node_touch(copy, ms, version, true);
		if (node_put(target, j, copy) < 0)
			return -1;
	}
	node_touch(target, ms, version, false);
	return 0;
}

/* The merge patch that turns object a into object b, or NULL when equal
 * (*fail set on ENOMEM). */
static struct tnode *diff(const struct tnode *a, const struct tnode *b, const char *key, bool *fail)
{
	struct tnode *d = node_new(TK_OBJ, key);
	if (!d) {
		*fail = true;
		return NULL;
	}
	for (size_t i = 0; i < b->n && !*fail; i++) {
		const struct tnode *bk = b->kids[i];
		ssize_t j = node_find(a, bk->key);
		struct tnode *part;
		if (j >= 0 && a->kids[j]->kind == TK_OBJ && bk->kind == TK_OBJ) {
			part = diff(a->kids[j], bk, bk->key, fail);
			if (!part)
				continue; /* equal, or *fail */
		} else if (j >= 0 && node_equal(a->kids[j], bk)) {
			continue;
		} else if (!(part = node_copy(bk))) {
			*fail = true;
			continue;
		}
		if (node_add(d, part) < 0) {
			node_free(part);
			*fail = true;
		}
	}
	for (size_t i = 0; i < a->n && !*fail; i++) {
		if (node_find(b, a->kids[i]->key) >= 0)
			continue;
		struct tnode *del = node_new(TK_NULL, a->kids[i]->key);
		if (!del || node_add(d, del) < 0) {
			node_free(del);
			*fail = true;
		}
	}
	if (*fail || d->n == 0) {
		node_free(d);
		return NULL;
	}
	return d;
}

/* ---- JSON out ---- */

void twin_format_time(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int parse_time(const char *s, int64_t *ms)
{
	struct tm tm = {0};
	int frac = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return 0;
}

static int gen_value(yajl_gen g, const struct tnode *n)
{
	yajl_gen_status st;
	switch (n->kind) {
	case TK_NULL:
		st = yajl_gen_null(g);
		break;
	case TK_TRUE:
	case TK_FALSE:
		st = yajl_gen_bool(g, n->kind == TK_TRUE);
		break;
	case TK_NUM:
		st = yajl_gen_number(g, n->text, strlen(n->text));
		break;
	case TK_STR:
		st = yajl_gen_string(g, (const unsigned char *)n->text, strlen(n->text));
		break;
	case TK_ARR:
		if (yajl_gen_array_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < n->n; i++)
			if (gen_value(g, n->kids[i]) < 0)
				return -1;
		st = yajl_gen_array_close(g);
		break;
	default:
		if (yajl_gen_map_open(g) != yajl_gen_status_ok)
			return -1;
		for (size_t i = 0; i < n->n; i++)
			if (json_gen_str(g, n->kids[i]->key) < 0 || gen_value(g, n->kids[i]) < 0)
				return -1;
		st = yajl_gen_map_close(g);
		break;
	}
	return st == yajl_gen_status_ok ? 0 : -1;
}

static int gen_metadata(yajl_gen g, const struct tnode *n, bool versioned)
{
	char when[32];
	twin_format_time(n->updated_ms, when);
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_key_str(g, "$lastUpdated", when))
		return -1;
	if (versioned && json_gen_key_int(g, "$lastUpdatedVersion", n->updated_version) < 0)
		return -1;
	if (n->kind == TK_OBJ)
		for (size_t i = 0; i < n->n; i++)
			if (json_gen_str(g, n->kids[i]->key) < 0 ||
			    gen_metadata(g, n->kids[i], versioned) < 0)
				return -1;
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

static int gen_section(yajl_gen g, const struct section *s)
{
	if (yajl_gen_map_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < s->root->n; i++)
		if (json_gen_str(g, s->root->kids[i]->key) < 0 ||
		    gen_value(g, s->root->kids[i]) < 0)
			return -1;
	if (json_gen_str(g, "$metadata") < 0 || gen_metadata(g, s->root, s->versioned_meta) < 0 ||
	    json_gen_key_int(g, "$version", s->version) < 0)
		return -1;
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

static char *gen_finish(yajl_gen g, int rc, size_t *len)
{
	char *out = json_gen_done_if(g, rc == 0, len);
	return out;
}

static size_t values_size(const struct tnode *root)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return SIZE_MAX;
	size_t len = SIZE_MAX;
	const unsigned char *buf;
	if (gen_value(g, root) == 0 && yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		len = SIZE_MAX;
	yajl_gen_free(g);
	return len;
}

/* {"<k1>":<section 1>,"<k2>":<section 2>} with, first, the generation id
 * when gen_id is not NULL. */
static char *gen_twin(const struct twin *t, const char *gen_id, size_t *len)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	int rc = yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -1;
	if (rc == 0 && gen_id)
		rc = json_gen_key_str(g, "generation_id", gen_id);
	if (rc == 0)
		rc = json_gen_str(g, "desired");
	if (rc == 0)
		rc = gen_section(g, &t->desired);
	if (rc == 0)
		rc = json_gen_str(g, "reported");
	if (rc == 0)
		rc = gen_section(g, &t->reported);
	if (rc == 0 && yajl_gen_map_close(g) != yajl_gen_status_ok)
		rc = -1;
	return gen_finish(g, rc, len);
}

char *twin_get_json(const struct twin *t, size_t *len)
{
	return gen_twin(t, NULL, len);
}

char *twin_save(const struct twin *t, size_t *len)
{
	return gen_twin(t, t->generation_id, len);
}

/* ---- twin ---- */

static int section_init(struct section *s, yajl_val obj, bool versioned, int64_t ms,
			struct berr *err)
{
	s->versioned_meta = versioned;
	s->version = 1;
	if (obj && YAJL_IS_OBJECT(obj)) {
		if (node_from_json(obj, NULL, 0, false, &s->root, err) < 0)
			return -1;
		/* Nulls mean nothing in a document (only in a patch). */
		for (size_t i = s->root->n; i-- > 0;)
			if (s->root->kids[i]->kind == TK_NULL)
				node_remove(s->root, i);
		size_t size = values_size(s->root);
		if (size > TWIN_SECTION_MAX) {
			node_free(s->root);
			s->root = NULL;
			return berr_set(err, 0,
					"desired properties of %zu bytes are over the limit of %d",
					size, TWIN_SECTION_MAX);
		}
	} else if (!(s->root = node_new(TK_OBJ, NULL))) {
		return berr_set(err, ENOMEM, "twin");
	}
	node_touch(s->root, ms, s->version, true);
	return 0;
}

int twin_new(const char *generation_id, yajl_val desired, int64_t now_ms, struct twin **out,
	     struct berr *err)
{
	struct twin *t = calloc(1, sizeof(*t));
	if (!t || !(t->generation_id = strdup(generation_id ? generation_id : ""))) {
		free(t);
		return berr_set(err, ENOMEM, "twin");
	}
	if (section_init(&t->desired, desired, true, now_ms, err) < 0 ||
	    section_init(&t->reported, NULL, false, now_ms, err) < 0) {
		twin_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

void twin_free(struct twin *t)
{
	if (!t)
		return;
	node_free(t->desired.root);
	node_free(t->reported.root);
	free(t->generation_id);
	free(t);
}

const char *twin_generation_id(const struct twin *t)
{
	return t->generation_id;
}

int64_t twin_desired_version(const struct twin *t)
{
	return t->desired.version;
}

int64_t twin_reported_version(const struct twin *t)
{
	return t->reported.version;
}

static int patch_from_json(const char *json, size_t len, struct tnode **out, struct berr *err)
{
	yajl_val v = NULL;
	if (json_parse(json, len, 2 * TWIN_SECTION_MAX, "patch", &v, err) < 0)
		return -1;
	int rc;
	if (!YAJL_IS_OBJECT(v))
		rc = berr_set(err, 0, "patch is not a JSON object");
	else
		rc = node_from_json(v, NULL, 0, true, out, err);
	yajl_tree_free(v);
	return rc;
}

static int section_apply(struct section *s, const struct tnode *patch, int64_t ms, int64_t version,
			 struct berr *err)
{
	struct tnode *copy = node_copy(s->root);
	if (!copy || merge(copy, patch, ms, version) < 0) {
		node_free(copy);
		return berr_set(err, ENOMEM, "twin");
	}
	size_t size = values_size(copy);
	if (size > TWIN_SECTION_MAX) {
		node_free(copy);
		return berr_set(err, 0, "the result would be %zu bytes, over the limit of %d", size,
				TWIN_SECTION_MAX);
	}
	node_free(s->root);
	s->root = copy;
	s->version = version;
	return 0;
}

int twin_patch_reported(struct twin *t, const char *json, size_t len, int64_t now_ms,
			int64_t *version, struct berr *err)
{
	struct tnode *patch;
	if (patch_from_json(json, len, &patch, err) < 0)
		return -1;
	int rc = section_apply(&t->reported, patch, now_ms, t->reported.version + 1, err);
	node_free(patch);
	if (rc == 0)
		*version = t->reported.version;
	return rc;
}

/* The JSON text of a merge patch, with "$version" when version > 0. */
static char *gen_patch(const struct tnode *patch, int64_t version)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	int rc = yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -1;
	for (size_t i = 0; i < patch->n && rc == 0; i++)
		if (json_gen_str(g, patch->kids[i]->key) < 0 || gen_value(g, patch->kids[i]) < 0)
			rc = -1;
	if (rc == 0 && version > 0 && json_gen_key_int(g, "$version", version) < 0)
		rc = -1;
	if (rc == 0 && yajl_gen_map_close(g) != yajl_gen_status_ok)
		rc = -1;
	return gen_finish(g, rc, NULL);
}

/* Makes section s hold `values` (an object or NULL for {}); version is the
 * section's new version, or its version + 1 when 0 (then only when the
 * values change). *patch_out, when asked for, gets the merge patch from the
 * old to the new values with "$version" (NULL when they did not change). */
static int section_set(struct section *s, yajl_val values, int64_t version, int64_t now_ms,
		       char **patch_out, struct berr *err)
{
	if (patch_out)
		*patch_out = NULL;
	struct section fresh = {0};
	if (section_init(&fresh, values, s->versioned_meta, now_ms, err) < 0)
		return -1;
	bool fail = false;
	struct tnode *patch = diff(s->root, fresh.root, NULL, &fail);
	node_free(fresh.root);
	if (fail)
		return berr_set(err, ENOMEM, "twin");
	if (!patch) {
		if (version > 0)
			s->version = version;
		return 0;
	}
	if (version <= 0)
		version = s->version + 1;
	int rc = section_apply(s, patch, now_ms, version, err);
	if (rc == 0 && patch_out && !(*patch_out = gen_patch(patch, version)))
		rc = berr_set(err, ENOMEM, "twin desired patch");
	node_free(patch);
	return rc;
}

int twin_set_desired(struct twin *t, yajl_val desired, int64_t now_ms, char **patch_out,
		     struct berr *err)
{
	return section_set(&t->desired, desired, 0, now_ms, patch_out, err);
}

int twin_sync_desired(struct twin *t, yajl_val desired, int64_t version, int64_t now_ms,
		      char **patch_out, struct berr *err)
{
	if (version < 1)
		return berr_set(err, 0, "desired properties without a $version");
	return section_set(&t->desired, desired, version, now_ms, patch_out, err);
}

int twin_patch_desired(struct twin *t, const char *json, size_t len, int64_t version,
		       int64_t now_ms, struct berr *err)
{
	yajl_val v = NULL;
	if (json_parse(json, len, 2 * TWIN_SECTION_MAX, "desired patch", &v, err) < 0)
		return -1;
	struct tnode *patch = NULL;
	int rc = YAJL_IS_OBJECT(v) ? node_from_json(v, NULL, 0, false, &patch, err)
				   : berr_set(err, 0, "desired patch is not a JSON object");
	yajl_tree_free(v);
	if (rc == 0)
		rc = section_apply(&t->desired, patch, now_ms, version, err);
	node_free(patch);
	return rc;
}

int twin_set_reported(struct twin *t, yajl_val reported, int64_t version, int64_t now_ms,
		      struct berr *err)
{
	return section_set(&t->reported, reported, version, now_ms, NULL, err);
}

int twin_reported_diff(const struct twin *t, yajl_val base, char **patch_out, struct berr *err)
{
	*patch_out = NULL;
	struct section from = {0};
	if (section_init(&from, base, false, 0, err) < 0)
		return -1;
	bool fail = false;
	struct tnode *patch = diff(from.root, t->reported.root, NULL, &fail);
	node_free(from.root);
	if (fail)
		return berr_set(err, ENOMEM, "twin");
	if (!patch)
		return 0;
	*patch_out = gen_patch(patch, 0);
	node_free(patch);
	return *patch_out ? 0 : berr_set(err, ENOMEM, "twin");
}

char *twin_reported_values(const struct twin *t)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	return gen_finish(g, gen_value(g, t->reported.root), NULL);
}

/* ---- loading the persisted form ---- */

static void apply_metadata(struct tnode *n, yajl_val meta)
{
	if (!meta || !YAJL_IS_OBJECT(meta))
		return;
	parse_time(json_str(json_get(meta, "$lastUpdated")), &n->updated_ms);
	yajl_val v = json_get(meta, "$lastUpdatedVersion");
	if (v && YAJL_IS_INTEGER(v))
		n->updated_version = YAJL_GET_INTEGER(v);
	if (n->kind == TK_OBJ)
		for (size_t i = 0; i < n->n; i++)
			apply_metadata(n->kids[i], json_get(meta, n->kids[i]->key));
}

static int section_load(struct section *s, yajl_val obj, bool versioned, const char *what,
			struct berr *err)
{
	s->versioned_meta = versioned;
	long long version = 0;
	if (!obj || !YAJL_IS_OBJECT(obj))
		return berr_set(err, 0, "%s: expected an object", what);
	if (json_get_int(obj, "$version", what, true, &version, err) < 0)
		return -1;
	if (node_from_json(obj, NULL, 0, false, &s->root, err) < 0)
		return berr_wrap(err, "%s", what);
	s->version = version;
	apply_metadata(s->root, json_get(obj, "$metadata"));
	return 0;
}

int twin_load(const char *json, size_t len, const char *what, struct twin **out, struct berr *err)
{
	yajl_val v = NULL;
	if (json_parse(json, len, TWIN_FILE_MAX, what, &v, err) < 0)
		return -1;
	struct twin *t = calloc(1, sizeof(*t));
	const char *gen = NULL;
	int rc = t ? 0 : berr_set(err, ENOMEM, "twin");
	if (rc == 0)
		rc = json_get_str(v, "generation_id", "twin", true, &gen, err);
	if (rc == 0 && !(t->generation_id = strdup(gen)))
		rc = berr_set(err, ENOMEM, "twin");
	if (rc == 0)
		rc = section_load(&t->desired, json_get(v, "desired"), true, "desired", err);
	if (rc == 0)
		rc = section_load(&t->reported, json_get(v, "reported"), false, "reported", err);
	yajl_tree_free(v);
	if (rc < 0) {
		twin_free(t);
		return berr_wrap(err, "%s", what);
	}
	*out = t;
	return 0;
}
