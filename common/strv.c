#include "common/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

char *dup_or_null(const char *s, bool *ok)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

char **strv_dup(char *const *v, bool *ok)
{
	if (!v)
		return NULL;
	size_t n = strv_len(v);
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			strv_free(out);
			goto fail;
		}
	}
	return out;
fail:
	*ok = false;
	errno = ENOMEM;
	return NULL;
}

int strv_push(char ***v, const char *s)
{
	size_t n = strv_len(*v);
	char *copy = strdup(s);
	if (!copy)
		return -1;
	char **nv = realloc(*v, (n + 2) * sizeof(*nv));
	if (!nv) {
		free(copy);
		return -1;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

int strv_env_set(char ***env, const char *kv)
{
	size_t klen = key_len(kv);
	for (size_t i = 0; *env && (*env)[i]; i++) {
		char *e = (*env)[i];
		if (key_len(e) == klen && !strncmp(e, kv, klen)) {
			char *copy = strdup(kv);
			if (!copy)
				return -1;
			free(e);
			(*env)[i] = copy;
			return 0;
		}
	}
	return strv_push(env, kv);
}

int strv_env_set_kv(char ***env, const char *key, const char *value)
{
	char *kv = NULL;
	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return -1;
	int rc = strv_env_set(env, kv);
	free(kv);
	return rc;
}

const char *strv_env_get(char *const *env, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], key, klen) && env[i][klen] == '=')
			return env[i] + klen + 1;
	return NULL;
}
