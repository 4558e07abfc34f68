/* Compiled seccomp programs kept on disk (under the runtime directory, a
 * tmpfs), so each instance start loads a program instead of building it.
 * An entry holds its full key text; a file whose key differs, whose size
 * does not add up, or which someone other than berth's user owns or could
 * have written is ignored and rebuilt. */
#include "shim/security.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "shim/seccomp_internal.h"

#define CACHE_MAGIC   "berthsc1" /* bump when the program layout or prologue changes */
#define CACHE_KEY_MAX (1024 * 1024)

struct cache_header {
	char magic[8];
	uint32_t key_len;
	uint32_t n_insns;
	uint32_t flags;
	uint32_t reserved;
};

static char *cache_dir;

/* A directory is trusted when it is ours and nobody else may write to it. */
static bool dir_is_private(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       !(st.st_mode & (S_IWGRP | S_IWOTH));
}

int seccomp_set_cache_dir(const char *dir, struct berr *err)
{
	free(cache_dir);
	cache_dir = NULL;
	if (!dir)
		return 0;
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return berr_wrap(err, "seccomp cache");
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "seccomp cache %s", dir);
	if (!dir_is_private(fd))
		return berr_set(err, 0,
				"seccomp cache %s: must be a directory owned by uid %d and "
				"writable by it alone",
				dir, (int)geteuid());
	cache_dir = strdup(dir);
	if (!cache_dir)
		return berr_set(err, ENOMEM, "seccomp cache %s", dir);
	return 0;
}

static int open_cache_dir(void)
{
	if (!cache_dir)
		return -1;
	int fd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!dir_is_private(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

int sc_cache_get(const char *name, const char *key, size_t key_len, struct seccomp_filter *out)
{
	cleanup_close int dfd = open_cache_dir();
	if (dfd < 0)
		return -1;
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	size_t want_max =
	    sizeof(struct cache_header) + CACHE_KEY_MAX + BPF_MAXINSNS * sizeof(struct sock_filter);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) || (size_t)st.st_size > want_max ||
	    (size_t)st.st_size < sizeof(struct cache_header))
		return -1;
	cleanup_free char *buf = malloc(st.st_size);
	if (!buf || pread(fd, buf, st.st_size, 0) != st.st_size)
		return -1;
	struct cache_header h;
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, CACHE_MAGIC, sizeof(h.magic)) || h.key_len != key_len ||
	    h.n_insns == 0 || h.n_insns > BPF_MAXINSNS ||
	    (size_t)st.st_size != sizeof(h) + h.key_len + h.n_insns * sizeof(struct sock_filter) ||
	    memcmp(buf + sizeof(h), key, key_len))
		return -1;
	size_t bytes = h.n_insns * sizeof(struct sock_filter);
	out->insns = malloc(bytes);
	if (!out->insns)
		return -1;
	memcpy(out->insns, buf + sizeof(h) + key_len, bytes);
	out->len = h.n_insns;
	out->flags = h.flags;
	return 0;
}

void sc_cache_put(const char *name, const char *key, size_t key_len, const struct seccomp_filter *f)
{
	if (key_len > CACHE_KEY_MAX)
		return;
	cleanup_close int dfd = open_cache_dir();
	if (dfd < 0)
		return;
	size_t bytes = f->len * sizeof(struct sock_filter);
	size_t total = sizeof(struct cache_header) + key_len + bytes;
	cleanup_free char *buf = malloc(total);
	if (!buf)
		return;
	struct cache_header h = {
	    .key_len = (uint32_t)key_len, .n_insns = (uint32_t)f->len, .flags = f->flags};
	memcpy(h.magic, CACHE_MAGIC, sizeof(h.magic));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), key, key_len);
	memcpy(buf + sizeof(h) + key_len, f->insns, bytes);
	struct berr err;
	/* A cache that cannot be written costs speed, not correctness. */
	if (fs_write_file_atomic_at(dfd, name, buf, total, 0600, &err) < 0)
		log_debug("seccomp cache %s: %s", cache_dir, err.msg);
}
