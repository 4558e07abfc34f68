/* The store's files in a directory: pread/pwrite on descriptors, fdatasync,
 * and a lock so that two hubs never write one log. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "hub/store_io.h"

#define LOCK_NAME "LOCK"

struct posix_io {
	struct store_io io;
	char *dir;
	int dirfd;
	int lockfd;
};

static struct posix_io *pio(struct store_io *io)
{
	return (struct posix_io *)io;
}

static int p_open(struct store_io *io, const char *name, bool create, struct berr *err)
{
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
	int fd = openat(pio(io)->dirfd, name, flags, 0600);
	if (fd < 0)
		return berr_set(err, errno, "%s %s/%s", create ? "create" : "open", io->where,
				name);
	return fd;
}

static ssize_t p_pread(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
		       struct berr *err)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(h, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berr_set(err, errno, "read %s", io->where);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int p_pwrite(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
		    struct berr *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(h, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return berr_set(err, n < 0 ? errno : EIO, "write %s", io->where);
		done += (size_t)n;
	}
	return 0;
}

static int p_sync(struct store_io *io, int h, struct berr *err)
{
	if (fdatasync(h) < 0)
		return berr_set(err, errno, "fdatasync in %s", io->where);
	return 0;
}

static int p_truncate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	if (ftruncate(h, (off_t)len) < 0)
		return berr_set(err, errno, "truncate in %s", io->where);
	return 0;
}

static int p_allocate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	int rc = posix_fallocate(h, 0, (off_t)len);
	if (rc)
		return berr_set(err, rc, "allocate in %s", io->where);
	return 0;
}

static int p_size(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	struct stat st;
	if (fstat(h, &st) < 0)
		return berr_set(err, errno, "stat in %s", io->where);
	*len = (uint64_t)st.st_size;
	return 0;
}

static void p_close(struct store_io *io, int h)
{
	close(h);
}

static int p_unlink(struct store_io *io, const char *name, struct berr *err)
{
	if (unlinkat(pio(io)->dirfd, name, 0) < 0 && errno != ENOENT)
		return berr_set(err, errno, "remove %s/%s", io->where, name);
	return 0;
}

static int p_sync_dir(struct store_io *io, struct berr *err)
{
	if (fsync(pio(io)->dirfd) < 0)
		return berr_set(err, errno, "fsync %s", io->where);
	return 0;
}

static int p_list(struct store_io *io, int (*fn)(const char *name, void *arg), void *arg,
		  struct berr *err)
{
	int fd = openat(pio(io)->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_closedir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return berr_set(err, errno, "list %s", io->where);
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && fn(e->d_name, arg) < 0)
			return -1;
	return 0;
}

static int p_space(struct store_io *io, uint64_t *avail, uint64_t *total, struct berr *err)
{
	struct statvfs sv;
	if (fstatvfs(pio(io)->dirfd, &sv) < 0)
		return berr_set(err, errno, "statvfs %s", io->where);
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}

static int p_rename(struct store_io *io, const char *from, const char *to, struct berr *err)
{
	int dfd = pio(io)->dirfd;
	if (renameat(dfd, from, dfd, to) < 0)
		return berr_set(err, errno, "rename %s/%s to %s", io->where, from, to);
	return 0;
}

static void p_destroy(struct store_io *io)
{
	struct posix_io *p = pio(io);
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->dir);
	free(p);
}

static const struct store_io_ops posix_ops = {
    .open = p_open,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .sync = p_sync,
    .truncate = p_truncate,
    .allocate = p_allocate,
    .size = p_size,
    .close = p_close,
    .unlink = p_unlink,
    .sync_dir = p_sync_dir,
    .list = p_list,
    .space = p_space,
    .destroy = p_destroy,
    .rename = p_rename,
};

int store_io_posix(const char *dir, struct store_io **out, struct berr *err)
{
	struct posix_io *p = calloc(1, sizeof(*p));
	if (!p || !(p->dir = strdup(dir))) {
		free(p);
		return berr_set(err, ENOMEM, "store %s", dir);
	}
	p->io.ops = &posix_ops;
	p->io.where = p->dir;
	p->dirfd = p->lockfd = -1;
	if (fs_mkdir_p(dir, 0700, err) < 0) {
		p_destroy(&p->io);
		return berr_wrap(err, "store %s: cannot create it", dir);
	}
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		int e = errno;
		p_destroy(&p->io);
		return berr_set(err, e, "store %s: cannot open it", dir);
	}
	p->lockfd = openat(p->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->lockfd < 0 || flock(p->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		p_destroy(&p->io);
		if (e == EWOULDBLOCK)
			return berr_set(err, 0, "store %s is in use by another hub", dir);
		return berr_set(err, e, "store %s: lock", dir);
	}
	*out = &p->io;
	return 0;
}
