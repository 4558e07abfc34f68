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
int layer_lsetxattr_at(int dirfd, const char *name, const char *key, const void *val,
		       size_t len)
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

void layer_quote(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		/* Room for the longest escape, the closing quote, "..." and NUL. */
		if (o + 4 + 1 + 3 + 1 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}
