/* Private to agent/: JSON paths for error messages, in the form users see in their manifests:
 *   $.modulesContent.$edgeAgent['properties.desired'].modules.web.settings.image
 * Keys that are not plain identifiers are written in brackets. Paths are
 * built into fixed buffers; an overlong path is cut, never overflowed. */
#ifndef BERTH_AGENT_JPATH_H
#define BERTH_AGENT_JPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"
#include "common/strv.h"

#define JPATH_MAX 512

struct jpath {
	char s[JPATH_MAX];
};

/* parent + ".key" or "['key']" */
void jpath_key(struct jpath *out, const struct jpath *parent, const char *key);
/* parent + "[i]" */
void jpath_index(struct jpath *out, const struct jpath *parent, size_t i);
void jpath_root(struct jpath *out);

/* Member lookups that fill err as "<path>: <problem>". Absent members give
 * NULL / leave *out unchanged unless required. */
NODISCARD int jp_obj(yajl_val obj, const char *key, const struct jpath *path, bool required,
		     yajl_val *out, struct berr *err);
NODISCARD int jp_array(yajl_val obj, const char *key, const struct jpath *path, bool required,
		       yajl_val *out, struct berr *err);
/* A string of at most max_len bytes (0: no bound beyond the document's). */
NODISCARD int jp_str(yajl_val obj, const char *key, const struct jpath *path, bool required,
		     size_t max_len, const char **out, struct berr *err);
NODISCARD int jp_int(yajl_val obj, const char *key, const struct jpath *path, bool required,
		     int64_t min, int64_t max, int64_t *out, struct berr *err);
NODISCARD int jp_bool(yajl_val obj, const char *key, const struct jpath *path, bool required,
		      bool *out, struct berr *err);

/* Array of strings (each at most max_len, at most max_items) into a
 * NULL-terminated malloc'd vector. A lone string is taken as a one-element
 * array when allow_string (Docker's strslice). */
NODISCARD int jp_strv(yajl_val v, const struct jpath *path, bool allow_string, size_t max_items,
		      size_t max_len, char ***out, struct berr *err);

#endif
