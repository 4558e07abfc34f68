/* NULL-terminated string vectors (argv, env, layer lists), owned by whoever
 * built them. */
#ifndef BERTH_SHIM_STRV_H
#define BERTH_SHIM_STRV_H

#include <stdbool.h>
#include <stddef.h>

size_t strv_len(char *const *v);
void strv_free(char **v);
/* Deep copy; NULL in gives NULL out with *ok true, allocation failure gives
 * NULL with *ok false. */
char **strv_dup(char *const *v, bool *ok);
/* Appends a copy of s; returns 0 or -1 (ENOMEM), leaving *v valid. */
int strv_push(char ***v, const char *s);
/* Sets "KEY=value" in an environment vector, replacing an existing KEY. */
int strv_env_set(char ***env, const char *kv);
/* The value of KEY in env, or NULL. */
const char *strv_env_get(char *const *env, const char *key);

#endif
