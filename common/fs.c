#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

/* Reads fd to its end into a buffer of cap bytes at first, grown as needed. */
static int read_all(int fd, const char *name, size_t max_len, size_t cap, char **out, size_t *len,
		    struct berr *err)
{
	cleanup_free char *buf = malloc(cap);
	if (!buf)
		return berr_set(err, ENOMEM, "read %s", name);
	size_t n = 0;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max_len + 1)
				return berr_set(err, 0, "%s: over the limit of %zu bytes", name,
						max_len);
			size_t ncap = cap * 2;
			char *p = realloc(buf, ncap);
			if (!p)
				return berr_set(err, ENOMEM, "read %s", name);
			buf = p;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return berr_set(err, errno, "read %s", name);
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max_len)
			return berr_set(err, 0, "%s: over the limit of %zu bytes", name, max_len);
	}
	buf[n] = '\0';
	*out = take_ptr(buf);
	if (len)
		*len = n;
	return 0;
}

int fs_read_file_at(int dirfd, const char *name, size_t max_len, char **out, size_t *len,
		    struct berr *err)
{
	*out = NULL;
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "open %s", name);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berr_set(err, errno, "stat %s", name);
	if (S_ISREG(st.st_mode) && (size_t)st.st_size > max_len)
		return berr_set(err, 0, "%s: %lld bytes is over the limit of %zu", name,
				(long long)st.st_size, max_len);
	return read_all(fd, name, max_len, S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096, out,
			len, err);
}

int fs_read_fd(int fd, const char *what, size_t max_len, char **out, size_t *len, struct berr *err)
{
	*out = NULL;
	return read_all(fd, what, max_len, 4096, out, len, err);
}

int fs_read_file(const char *path, size_t max_len, char **out, size_t *len, struct berr *err)
{
	return fs_read_file_at(AT_FDCWD, path, max_len, out, len, err);
}

int fs_write_all(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;
	while (len) {
		ssize_t w = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

int fs_write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			    struct berr *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", name, (int)getpid()) >= (int)sizeof(tmp))
		return berr_set(err, ENAMETOOLONG, "write %s", name);
	cleanup_close int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return berr_set(err, errno, "create %s", tmp);
	if (fs_write_all(fd, data, len, -1) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return berr_set(err, e, "write %s", name);
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return berr_set(err, e, "rename %s", name);
	}
	/* The rename is durable only once the directory is synced. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", name);
	char *slash = strrchr(dir, '/');
	int dfd;
	if (slash) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		dfd = dirfd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
					: fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	}
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			 struct berr *err)
{
	return fs_write_file_atomic_at(AT_FDCWD, path, data, len, mode, err);
}

int fs_mkdir_p(const char *path, mode_t mode, struct berr *err)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return berr_set(err, ENAMETOOLONG, "mkdir %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return berr_set(err, errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return berr_set(err, errno, "mkdir %s", buf);
	struct stat st;
	if (stat(buf, &st) < 0)
		return berr_set(err, errno, "stat %s", buf);
	if (!S_ISDIR(st.st_mode))
		return berr_set(err, ENOTDIR, "mkdir %s", buf);
	return 0;
}

DIR *fs_opendir_at(int dirfd, const char *what, struct berr *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		berr_set(err, errno, "%s", what);
		if (fd >= 0)
			close(fd);
	}
	return d;
}

static int remove_tree_fd(int dfd, dev_t dev, int depth, struct berr *err)
{
	if (depth > 4096)
		return berr_set(err, ELOOP, "remove: directory tree too deep");
	cleanup_closedir DIR *d = fs_opendir_at(dfd, "remove: opendir", err);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return berr_set(err, errno, "remove: stat %s", de->d_name);
		}
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev)
				return berr_set(err, EXDEV, "remove: %s is a mount point",
						de->d_name);
			cleanup_close int sub = openat(
			    dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return berr_set(err, errno, "remove: open %s", de->d_name);
			if (remove_tree_fd(sub, dev, depth + 1, err) < 0)
				return berr_wrap(err, "%s", de->d_name);
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
				return berr_set(err, errno, "remove: rmdir %s", de->d_name);
		} else if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
			return berr_set(err, errno, "remove: unlink %s", de->d_name);
		}
	}
	return 0;
}

int fs_remove_tree_at(int dirfd, const char *name, struct berr *err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return berr_set(err, errno, "remove %s", name);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return berr_set(err, errno, "remove %s", name);
		return 0;
	}
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "remove %s", name);
	if (remove_tree_fd(fd, st.st_dev, 0, err) < 0)
		return berr_wrap(err, "remove %s", name);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return berr_set(err, errno, "remove %s", name);
	return 0;
}

int fs_remove_tree(const char *path, struct berr *err)
{
	return fs_remove_tree_at(AT_FDCWD, path, err);
}

int fs_fsync_dir(const char *path, struct berr *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "open %s", path);
	if (fsync(fd) < 0)
		return berr_set(err, errno, "fsync %s", path);
	return 0;
}

bool fs_name_is_plain(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

static int openat2_supported = -1;

void fs_disable_openat2(void)
{
	openat2_supported = 0;
}

/* Fallback walk: one component at a time, no symlink followed by the kernel.
 * Symlinks are resolved by hand against the root, with a bound on how many. */
static int open_in_root_walk(int root_fd, const char *path, int flags, mode_t mode,
			     struct berr *err)
{
	char work[PATH_MAX * 2];
	if (snprintf(work, sizeof(work), "%s", path) >= (int)sizeof(work))
		return berr_set(err, ENAMETOOLONG, "open %s", path);
	int links = 0;
	/* Stack of directory fds from the root down, so ".." can go back up
	 * without ever leaving the root. */
	int stack[256];
	int depth = 0;
	stack[0] = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	if (stack[0] < 0)
		return berr_set(err, errno, "open %s", path);
	char *rest = work;
	int ret = -1;
	for (;;) {
		while (*rest == '/')
			rest++;
		if (!*rest) {
			/* The path named a directory (or the root itself). */
			ret = openat(stack[depth], ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
			if (ret < 0)
				berr_set(err, errno, "open %s", path);
			break;
		}
		char *slash = strchr(rest, '/');
		char comp[NAME_MAX + 1];
		size_t clen = slash ? (size_t)(slash - rest) : strlen(rest);
		if (clen > NAME_MAX) {
			berr_set(err, ENAMETOOLONG, "open %s", path);
			break;
		}
		memcpy(comp, rest, clen);
		comp[clen] = '\0';
		rest += clen;
		bool last = true;
		for (const char *q = rest; *q; q++)
			if (*q != '/') {
				last = false;
				break;
			}
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			if (depth > 0)
				close(stack[depth--]);
			continue;
		}
		struct stat st;
		int sr = fstatat(stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW);
		if (sr == 0 && S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
			if (++links > 40) {
				berr_set(err, ELOOP, "open %s", path);
				break;
			}
			char target[PATH_MAX];
			ssize_t tl = readlinkat(stack[depth], comp, target, sizeof(target) - 1);
			if (tl < 0) {
				berr_set(err, errno, "readlink %s", comp);
				break;
			}
			target[tl] = '\0';
			char joined[PATH_MAX * 2];
			if (snprintf(joined, sizeof(joined), "%s/%s", target, rest) >=
			    (int)sizeof(joined)) {
				berr_set(err, ENAMETOOLONG, "open %s", path);
				break;
			}
			if (target[0] == '/')
				while (depth > 0)
					close(stack[depth--]);
			snprintf(work, sizeof(work), "%s", joined);
			rest = work;
			continue;
		}
		if (last) {
			ret = openat(stack[depth], comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			if (ret < 0)
				berr_set(err, errno, "open %s", path);
			break;
		}
		if (depth + 1 >= (int)ARRAY_SIZE(stack)) {
			berr_set(err, ENAMETOOLONG, "open %s", path);
			break;
		}
		int next =
		    openat(stack[depth], comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			berr_set(err, errno, "open %s", path);
			break;
		}
		stack[++depth] = next;
	}
	while (depth >= 0)
		close(stack[depth--]);
	return ret;
}

int fs_open_in_root(int root_fd, const char *path, int flags, mode_t mode, struct berr *err)
{
	if (openat2_supported != 0) {
		struct open_how how = {0};
		how.flags = (unsigned long long)(flags | O_CLOEXEC);
		how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
		how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
		const char *p = path;
		while (*p == '/')
			p++;
		if (!*p)
			p = ".";
		long fd;
		do
			fd = syscall(SYS_openat2, root_fd, p, &how, sizeof(how));
		while (fd < 0 && (errno == EAGAIN || errno == EINTR));
		if (fd >= 0) {
			openat2_supported = 1;
			return (int)fd;
		}
		if (errno != ENOSYS)
			return berr_set(err, errno, "open %s", path);
		openat2_supported = 0;
	}
	return open_in_root_walk(root_fd, path, flags, mode, err);
}

int fs_open_parent_in_root(int root_fd, const char *path, bool create, const char **base,
			   struct berr *err)
{
	const char *slash = strrchr(path, '/');
	/* Trailing slashes are not allowed: the caller names an entry. */
	if (slash && slash[1] == '\0')
		return berr_set(err, EINVAL, "%s: ends with '/'", path);
	*base = slash ? slash + 1 : path;
	if (!fs_name_is_plain(*base))
		return berr_set(err, EINVAL, "%s: last component is not a plain name", path);
	char dir[PATH_MAX];
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	if (dlen >= sizeof(dir))
		return berr_set(err, ENAMETOOLONG, "%s", path);
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	if (!create)
		return fs_open_in_root(root_fd, dlen ? dir : ".", O_RDONLY | O_DIRECTORY, 0, err);
	int fd = fs_open_in_root(root_fd, dlen ? dir : ".", O_RDONLY | O_DIRECTORY, 0, err);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	/* Create each missing directory. Every prefix is resolved from the root,
	 * so a symlink met on the way resolves as it would under chroot. */
	cleanup_close int cur = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	if (cur < 0)
		return berr_set(err, errno, "%s", path);
	for (size_t i = 0; i <= dlen; i++) {
		if (i < dlen && dir[i] != '/')
			continue;
		size_t start = i;
		while (start > 0 && dir[start - 1] != '/')
			start--;
		if (i == start)
			continue; /* empty component */
		char saved = dir[i];
		dir[i] = '\0';
		const char *comp = dir + start;
		int next = fs_open_in_root(root_fd, dir, O_RDONLY | O_DIRECTORY, 0, NULL);
		if (next < 0 && errno == ENOENT && fs_name_is_plain(comp)) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
				return berr_set(err, errno, "mkdir %s", dir);
			next = fs_open_in_root(root_fd, dir, O_RDONLY | O_DIRECTORY, 0, NULL);
		}
		if (next < 0)
			return berr_set(err, errno, "open %s", dir);
		dir[i] = saved;
		close(cur);
		cur = next;
	}
	return take_fd(&cur);
}
