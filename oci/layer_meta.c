#include "oci/layer_meta.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

bool layer_xattr_is_overlay(const char *name)
{
	return !strncmp(name, "trusted.overlay.", 16) || !strncmp(name, "user.overlay.", 13);
}

static int proc_path(char *buf, size_t cap, int dirfd, const char *name)
{
	if (snprintf(buf, cap, "/proc/self/fd/%d/%s", dirfd, name) >= (int)cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* The /proc/self/fd/N link is followed to the directory already verified;
 * the l* calls then leave the last component alone. */
int layer_lsetxattr_at(int dirfd, const char *name, const char *key, const void *val, size_t len)
{
	char path[64 + 256];
	if (proc_path(path, sizeof(path), dirfd, name) < 0)
		return -1;
	return lsetxattr(path, key, val, len, 0);
}

long layer_llistxattr_at(int dirfd, const char *name, char *list, size_t size)
{
	char path[64 + 256];
	if (proc_path(path, sizeof(path), dirfd, name) < 0)
		return -1;
	return llistxattr(path, list, size);
}

long layer_lgetxattr_at(int dirfd, const char *name, const char *key, void *val, size_t size)
{
	char path[64 + 256];
	if (proc_path(path, sizeof(path), dirfd, name) < 0)
		return -1;
	return lgetxattr(path, key, val, size);
}

static size_t escaped_len(unsigned char c)
{
	return c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? 4 : 1;
}

static size_t put_escaped(char *out, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	if (escaped_len(c) == 1) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 15];
	return 4;
}

/* A name too long to show whole keeps its start and its end, the parts
 * that tell where it points. */
void layer_quote(const char *in, char *out, size_t cap)
{
	if (cap < 16) {
		if (cap)
			out[0] = '\0';
		return;
	}
	const unsigned char *p = (const unsigned char *)in;
	size_t n = strlen(in), total = 0;
	for (size_t i = 0; i < n; i++)
		total += escaped_len(p[i]);
	size_t room = cap - 3; /* two quotes and the NUL */
	size_t o = 0;
	out[o++] = '"';
	if (total <= room) {
		for (size_t i = 0; i < n; i++)
			o += put_escaped(out + o, p[i]);
	} else {
		size_t budget = room - 3; /* "..." */
		size_t head_budget = budget / 3, tail_budget = budget - head_budget;
		size_t i = 0;
		while (i < n && o - 1 + escaped_len(p[i]) <= head_budget)
			o += put_escaped(out + o, p[i++]);
		size_t t = n, used = 0;
		while (t > i && used + escaped_len(p[t - 1]) <= tail_budget)
			used += escaped_len(p[--t]);
		memcpy(out + o, "...", 3);
		o += 3;
		for (; t < n; t++)
			o += put_escaped(out + o, p[t]);
	}
	out[o++] = '"';
	out[o] = '\0';
}
