/* JSON in and out, on top of yajl. Parsing is bounded (input size and nesting
 * depth); lookups take one key at a time because keys such as
 * "properties.desired" contain dots. Errors name the JSON path. */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"

#define JSON_MAX_DEPTH 64

/* Parses len bytes (need not be NUL-terminated). Refuses input longer than
 * max_len or nested deeper than JSON_MAX_DEPTH. `what` names the document in
 * errors ("manifest sha256:..."). Free the result with yajl_tree_free. */
NODISCARD int json_parse(const char *buf, size_t len, size_t max_len, const char *what,
			 yajl_val *out, struct berr *err);
/* The same, also refusing documents of more than max_values values: a tree
 * costs some 50 bytes a value, so a small hostile document could otherwise
 * take a hundred times its size in memory. */
NODISCARD int json_parse_limited(const char *buf, size_t len, size_t max_len, size_t max_values,
				 const char *what, yajl_val *out, struct berr *err);
NODISCARD int json_parse_file(const char *path, size_t max_len, yajl_val *out, struct berr *err);
/* A new object built from the JSON document in buf: size bytes, zeroed,
 * filled by fill(doc, obj, arg, err), freed with free_obj() when that
 * fails. NULL with err (prefixed with `what`) on failure. */
void *json_parse_new(const char *buf, size_t len, size_t max_len, const char *what, size_t size,
		     int (*fill)(yajl_val doc, void *obj, const void *arg, struct berr *err),
		     const void *arg, void (*free_obj)(void *obj), struct berr *err);

/* The kinds of value the member getters below check for. */
enum json_kind { JSON_STRING, JSON_INTEGER, JSON_BOOL, JSON_OBJECT, JSON_ARRAY };
bool json_is(yajl_val v, enum json_kind kind);
/* "a string", "an integer", "true or false", "an object", "an array". */
const char *json_kind_name(enum json_kind kind);

/* Member `key` of an object, or NULL if absent or obj is not an object. */
yajl_val json_get(yajl_val obj, const char *key);
/* The next member name of object obj, from member *i on, that is not in
 * known (NULL-terminated); *i moves past it. NULL when there is none. */
const char *json_unknown_key(yajl_val obj, const char *const *known, size_t *i);
/* String value or NULL when v is not a string. */
const char *json_str(yajl_val v);
/* 0 when v is an object; else -1 with "<path>: expected an object". */
NODISCARD int json_expect_object(yajl_val v, const char *path, struct berr *err);
/* Member that must be a string (NULL if absent and !required). `path` is the
 * JSON path of obj, used in errors: "<path>.<key>: expected a string". */
NODISCARD int json_get_str(yajl_val obj, const char *key, const char *path, bool required,
			   const char **out, struct berr *err);
/* Member that must be an integer; *out is left alone when it is absent. */
NODISCARD int json_get_i64(yajl_val obj, const char *key, const char *path, bool required,
			   int64_t *out, struct berr *err);
/* The same for a long long. */
static inline int json_get_int(yajl_val obj, const char *key, const char *path, bool required,
			       long long *out, struct berr *err)
{
	int64_t v = *out;
	int rc = json_get_i64(obj, key, path, required, &v, err);
	*out = v;
	return rc;
}
NODISCARD int json_get_bool(yajl_val obj, const char *key, const char *path, bool required,
			    bool *out, struct berr *err);
/* Member that must be an object / array (NULL if absent and !required). */
NODISCARD int json_get_obj(yajl_val obj, const char *key, const char *path, bool required,
			   yajl_val *out, struct berr *err);
NODISCARD int json_get_array(yajl_val obj, const char *key, const char *path, bool required,
			     yajl_val *out, struct berr *err);

/* v as a NULL-terminated vector of copies (NULL when v is NULL or null): an
 * array of at most max_items strings of at most max_len bytes each (0: no
 * bound), or one string when allow_string (Docker's strslice). Errors name
 * `what` ("spec.args: 5000 entries is over the limit of 4096", "spec.args[3]: expected a
 * string"). */
NODISCARD int json_strv(yajl_val v, const char *what, bool allow_string, size_t max_items,
			size_t max_len, char ***out, struct berr *err);
/* Member key of obj as json_strv() takes it, named "<path>.<key>". */
NODISCARD int json_get_strv(yajl_val obj, const char *key, const char *path, size_t max_items,
			    size_t max_len, char ***out, struct berr *err);

/* A member of a flat record (a state file) and the field of a struct it
 * goes to: a string in a char array of size bytes, or an int64_t when size
 * is 0. Tables are made of JSON_FIELD_STR() and JSON_FIELD_I64() entries. */
struct json_field {
	const char *key;
	size_t off, size;
};
#define JSON_FIELD_STR(type, key, member)                                                          \
	{                                                                                          \
		(key), offsetof(type, member), sizeof(((type *)0)->member)                         \
	}
#define JSON_FIELD_I64(type, key, member)                                                          \
	{                                                                                          \
		(key), offsetof(type, member), 0                                                   \
	}
/* The n members of table in obj into the fields of rec; one that is absent
 * leaves its field as it was unless required. Errors name "<path>.<key>":
 * missing, of another type, or a string too long for its field. */
NODISCARD int json_get_fields(yajl_val obj, const char *path, bool required,
			      const struct json_field *table, size_t n, void *rec,
			      struct berr *err);

/* Generation. json_gen_new() returns a generator with validation on;
 * json_gen_finish() hands back a malloc'd NUL-terminated copy of the output. */
yajl_gen json_gen_new(bool pretty);
int json_gen_str(yajl_gen g, const char *s);
int json_gen_key_str(yajl_gen g, const char *key, const char *value);
int json_gen_key_int(yajl_gen g, const char *key, long long value);
int json_gen_key_bool(yajl_gen g, const char *key, bool value);
/* key and an array of the strings of v (NULL-terminated; NULL: empty). */
int json_gen_key_strv(yajl_gen g, const char *key, char *const *v);
/* The fields of rec that table (n entries) names, as members of the open map. */
int json_gen_fields(yajl_gen g, const struct json_field *table, size_t n, const void *rec);
/* Writes a parsed value as it is (used to pass JSON through unchanged). */
int json_gen_val(yajl_gen g, yajl_val v);
char *json_gen_finish(yajl_gen g, size_t *len);
/* json_gen_finish(), then frees g. */
char *json_gen_done(yajl_gen g, size_t *len);
/* json_gen_done() when ok; otherwise NULL, and g (NULL too) is freed all the same. */
char *json_gen_done_if(yajl_gen g, bool ok, size_t *len);
/* Finishes g, frees it and writes its output to path atomically
 * (fs_write_file_atomic). `what` names the document in errors. */
NODISCARD int json_gen_write_file(yajl_gen g, const char *path, mode_t mode, const char *what,
				  struct berr *err);

#endif
