/* Copies of strings and NULL-terminated string vectors (argv, env, layer
 * lists), owned by whoever built them.
 *
 * The copying functions that take `bool *ok` set it to false when memory
 * runs out and never set it to true, so several copies can share one check:
 *   bool ok = true;
 *   a = dup_or_null(x, &ok); v = strv_dup(y, &ok);
 *   if (!ok) return berr_set(err, ENOMEM, ...); */
#ifndef BERTH_STRV_H
#define BERTH_STRV_H

#include <stdbool.h>
#include <stddef.h>

size_t strv_len(char *const *v);
void strv_free(char **v);
/* A copy of s, or NULL when s is NULL (or memory ran out: *ok false). */
char *dup_or_null(const char *s, bool *ok);
/* Deep copy; NULL in gives NULL out. */
char **strv_dup(char *const *v, bool *ok);
/* Appends a copy of s; returns 0 or -1 (ENOMEM), leaving *v valid. */
int strv_push(char ***v, const char *s);
/* Sets "KEY=value" in an environment vector, replacing an existing KEY. */
int strv_env_set(char ***env, const char *kv);
/* The same for KEY and value apart. */
int strv_env_set_kv(char ***env, const char *key, const char *value);
/* The value of KEY in env, or NULL. */
const char *strv_env_get(char *const *env, const char *key);

#endif
