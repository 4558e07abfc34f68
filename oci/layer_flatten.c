/* Flattening unpacked layers (overlay form, bottom first) into one root
 * filesystem, as overlayfs would show it: a 0/0 character device removes
 * what the layers below had at its path, a directory with
 * trusted.overlay.opaque=y hides everything below it, any other entry
 * replaces what was there, and a directory over a directory merges and
 * takes the upper one's metadata.
 *
 * The layers were written by layer_unpack and hold no symlink on any
 * directory path; the destination only holds what this code made. Still,
 * every directory is opened with O_NOFOLLOW from its parent's fd and every
 * change is an *at() call, so a symlink met anywhere is never followed. */
#include "oci/layer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "oci/layer_meta.h"

#define FLATTEN_MAX_DEPTH 300
#define XATTR_BUF	  (64 * 1024)

/* Files with more than one link in the current layer: inode -> where the
 * first one went in the destination. */
struct link_slot {
	ino_t ino;
	size_t off; /* path in the arena, NUL-terminated; 0 means empty slot */
};

struct flatten {
	const char *layer; /* the layer directory, for messages */
	int dst;
	char path[PATH_MAX]; /* relative path of the current entry */
	size_t path_len;
	struct berr *err;
	char *list; /* xattr names */
	char *value;

	struct link_slot *links;
	size_t n_links, cap_links;
	char *arena;
	size_t arena_len, arena_cap;
};

static int fail(struct flatten *f, int code, const char *what)
{
	char q[256];
	layer_quote(f->path_len ? f->path : "/", q, sizeof(q));
	return berr_set(f->err, code, "layer %s: %s: %s", f->layer, q, what);
}

static int path_push(struct flatten *f, const char *name, size_t *saved)
{
	size_t n = strlen(name);
	*saved = f->path_len;
	if (f->path_len + 1 + n >= sizeof(f->path))
		return fail(f, ENAMETOOLONG, "path too long");
	if (f->path_len)
		f->path[f->path_len++] = '/';
	memcpy(f->path + f->path_len, name, n + 1);
	f->path_len += n;
	return 0;
}

static void path_pop(struct flatten *f, size_t saved)
{
	f->path_len = saved;
	f->path[saved] = '\0';
}

/* --- metadata --- */

static int is_opaque(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, LAYER_OPAQUE_XATTR, v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

/* Removes the xattrs a lower layer left on a directory the upper one
 * takes over (overlayfs shows the upper directory's only). */
static int clear_xattrs(struct flatten *f, int fd)
{
	ssize_t n = flistxattr(fd, f->list, XATTR_BUF);
	if (n < 0)
		return errno == ENOTSUP ? 0 : fail(f, errno, "list xattrs");
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(f->list + i) + 1)
		if (fremovexattr(fd, f->list + i) < 0 && errno != ENODATA)
			return fail(f, errno, "remove xattr");
	return 0;
}

/* Copies xattrs from the layer entry (lfd, or ldir/name when it cannot be
 * opened) to the destination one (dfd, or ddir/name), overlay ones left out. */
static int copy_xattrs(struct flatten *f, int lfd, int ldir, int dfd, int ddir, const char *name)
{
	ssize_t n = lfd >= 0 ? flistxattr(lfd, f->list, XATTR_BUF)
			     : layer_llistxattr_at(ldir, name, f->list, XATTR_BUF);
	if (n < 0)
		return errno == ENOTSUP ? 0 : fail(f, errno, "list xattrs");
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(f->list + i) + 1) {
		const char *key = f->list + i;
		if (layer_xattr_is_overlay(key))
			continue;
		ssize_t vlen = lfd >= 0 ? fgetxattr(lfd, key, f->value, XATTR_BUF)
					: layer_lgetxattr_at(ldir, name, key, f->value, XATTR_BUF);
		if (vlen < 0) {
			if (errno == ENODATA)
				continue;
			return fail(f, errno, "read xattr");
		}
		int r = dfd >= 0 ? fsetxattr(dfd, key, f->value, (size_t)vlen, 0)
				 : layer_lsetxattr_at(ddir, name, key, f->value, (size_t)vlen);
		if (r < 0) {
			char q[300];
			layer_quote(key, q, sizeof(q));
			return fail(f, errno, q);
		}
	}
	return 0;
}

/* Owner, then mode (chown clears setuid), then xattrs (chown clears
 * security.capability). Times are the caller's, last. */
static int copy_meta(struct flatten *f, const struct stat *st, int lfd, int ldir, int dfd, int ddir,
		     const char *name)
{
	int r = dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
			 : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return fail(f, errno, "chown");
	if (dfd >= 0 && fchmod(dfd, st->st_mode & 07777) < 0)
		return fail(f, errno, "chmod");
	return copy_xattrs(f, lfd, ldir, dfd, ddir, name);
}

static int set_times(struct flatten *f, const struct stat *st, int dfd, int ddir, const char *name)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	int r = dfd >= 0 ? futimens(dfd, ts) : utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return fail(f, errno, "set times");
	return 0;
}

/* --- hardlinks --- */

static struct link_slot *link_find(struct flatten *f, ino_t ino)
{
	if (!f->cap_links)
		return NULL;
	size_t mask = f->cap_links - 1;
	for (size_t i = (size_t)ino * 0x9e3779b97f4a7c15ull & mask;; i = (i + 1) & mask) {
		struct link_slot *s = &f->links[i];
		if (!s->off || s->ino == ino)
			return s;
	}
}

static int link_add(struct flatten *f, ino_t ino)
{
	if ((f->n_links + 1) * 2 > f->cap_links) {
		size_t cap = f->cap_links ? f->cap_links * 2 : 256;
		struct link_slot *old = f->links;
		size_t old_cap = f->cap_links;
		f->links = calloc(cap, sizeof(*f->links));
		if (!f->links) {
			f->links = old;
			return fail(f, ENOMEM, "hardlink table");
		}
		f->cap_links = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].off)
				*link_find(f, old[i].ino) = old[i];
		free(old);
	}
	if (f->arena_len == 0)
		f->arena_len = 1; /* offset 0 marks an empty slot */
	if (f->arena_len + f->path_len + 1 > f->arena_cap) {
		size_t cap = f->arena_cap ? f->arena_cap : 16384;
		while (cap < f->arena_len + f->path_len + 1)
			cap *= 2;
		char *a = realloc(f->arena, cap);
		if (!a)
			return fail(f, ENOMEM, "hardlink table");
		f->arena = a;
		f->arena_cap = cap;
	}
	struct link_slot *s = link_find(f, ino);
	s->ino = ino;
	s->off = f->arena_len;
	memcpy(f->arena + f->arena_len, f->path, f->path_len + 1);
	f->arena_len += f->path_len + 1;
	f->n_links++;
	return 0;
}

static void links_reset(struct flatten *f)
{
	if (f->links)
		memset(f->links, 0, f->cap_links * sizeof(*f->links));
	f->n_links = 0;
	f->arena_len = 0;
}

/* Links ddir/name to the destination file the first link of ino went to. */
static int link_to_first(struct flatten *f, const char *first, int ddir, const char *name)
{
	const char *slash = strrchr(first, '/');
	cleanup_close int tdir = -1;
	const char *tbase = first;
	if (slash) {
		char dir[PATH_MAX];
		memcpy(dir, first, (size_t)(slash - first));
		dir[slash - first] = '\0';
		tdir = fs_open_in_root(f->dst, dir, O_RDONLY | O_DIRECTORY, 0, f->err);
		if (tdir < 0)
			return fail(f, errno, "open the directory of its hardlink target");
		tbase = slash + 1;
	}
	if (linkat(slash ? tdir : f->dst, tbase, ddir, name, 0) < 0)
		return fail(f, errno, "hardlink");
	return 0;
}

/* --- entries --- */

/* Copies [off, end) of in to the same place in out. */
static int copy_range(int in, int out, off_t off, off_t end)
{
	bool kernel = true;
	char buf[65536];
	while (off < end) {
		size_t want = end - off > (1 << 30) ? (1 << 30) : (size_t)(end - off);
		if (kernel) {
			loff_t a = off, b = off;
			ssize_t n = copy_file_range(in, &a, out, &b, want, 0);
			if (n > 0) {
				off += n;
				continue;
			}
			if (n == 0) {
				errno = EIO; /* the file shrank meanwhile */
				return -1;
			}
			if (errno == EINTR)
				continue;
			if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
			    errno != EOPNOTSUPP)
				return -1;
			kernel = false; /* refused: plain copy from here */
		}
		ssize_t n = pread(in, buf, want < sizeof(buf) ? want : sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO;
		if (n <= 0)
			return -1;
		if (fs_write_all(out, buf, (size_t)n, off) < 0)
			return -1;
		off += n;
	}
	return 0;
}

/* A clone where the file system shares extents; else the data ranges only,
 * so a sparse file (a layer may declare any size with no data) keeps its
 * holes instead of being written out as zeros. */
static int copy_data(int in, int out, off_t size)
{
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* a hole up to the end */
		off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (data < 0 || hole < 0) {
			if (errno != EINVAL && errno != EOPNOTSUPP)
				return -1;
			data = pos; /* no SEEK_DATA here: copy everything */
			hole = size;
		}
		if (hole > size)
			hole = size;
		if (copy_range(in, out, data, hole) < 0)
			return -1;
		pos = hole;
	}
	return ftruncate(out, size);
}

static int make_file(struct flatten *f, const struct stat *st, int ldir, int ddir, const char *name)
{
	if (st->st_nlink > 1) {
		struct link_slot *s = link_find(f, st->st_ino);
		if (s && s->off)
			return link_to_first(f, f->arena + s->off, ddir, name);
	}
	cleanup_close int in = openat(ldir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return fail(f, errno, "open");
	cleanup_close int out =
	    openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return fail(f, errno, "create");
	if (copy_data(in, out, st->st_size) < 0)
		return fail(f, errno, "copy");
	if (copy_meta(f, st, in, -1, out, -1, name) < 0 || set_times(f, st, out, -1, name) < 0)
		return -1;
	if (st->st_nlink > 1)
		return link_add(f, st->st_ino);
	return 0;
}

static int make_symlink(struct flatten *f, const struct stat *st, int ldir, int ddir,
			const char *name)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(ldir, name, target, sizeof(target) - 1);
	if (n < 0)
		return fail(f, errno, "readlink");
	target[n] = '\0';
	if (symlinkat(target, ddir, name) < 0)
		return fail(f, errno, "create symlink");
	if (copy_meta(f, st, -1, ldir, -1, ddir, name) < 0)
		return -1;
	return set_times(f, st, -1, ddir, name);
}

static int make_fifo(struct flatten *f, const struct stat *st, int ldir, int ddir, const char *name)
{
	if (mknodat(ddir, name, S_IFIFO | 0600, 0) < 0)
		return fail(f, errno, "create fifo");
	cleanup_close int in = openat(ldir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	cleanup_close int out = openat(ddir, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0 || out < 0)
		return fail(f, errno, "open fifo");
	if (copy_meta(f, st, in, -1, out, -1, name) < 0)
		return -1;
	return set_times(f, st, out, -1, name);
}

/* A directory stream of its own (a dup would share the read position). */
static DIR *dir_stream(int fd)
{
	int fd2 = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd2 < 0)
		return NULL;
	DIR *d = fdopendir(fd2);
	if (!d) {
		int e = errno;
		close(fd2);
		errno = e;
	}
	return d;
}

static int remove_children(struct flatten *f, int dfd)
{
	cleanup_closedir DIR *d = dir_stream(dfd);
	if (!d)
		return fail(f, errno, "read directory");
	struct dirent *de;
	while ((de = readdir(d)))
		if (fs_name_is_plain(de->d_name) && fs_remove_tree_at(dfd, de->d_name, f->err) < 0)
			return berr_wrap(f->err, "layer %s", f->layer);
	return 0;
}

static int merge_dir(struct flatten *f, int lfd, int dfd, int depth);

static int merge_entry(struct flatten *f, int lfd, int dfd, const char *name, int depth)
{
	struct stat st, dst;
	if (fstatat(lfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(f, errno, "stat");
	bool have = fstatat(dfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!have && errno != ENOENT)
		return fail(f, errno, "stat in the destination");

	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
		if (have && fs_remove_tree_at(dfd, name, f->err) < 0)
			return berr_wrap(f->err, "layer %s", f->layer);
		return 0;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) &&
	    !S_ISFIFO(st.st_mode)) {
		char q[256];
		layer_quote(f->path, q, sizeof(q));
		log_warn("layer %s: %s: device node or socket skipped", f->layer, q);
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (have && fs_remove_tree_at(dfd, name, f->err) < 0)
			return berr_wrap(f->err, "layer %s", f->layer);
		if (S_ISREG(st.st_mode))
			return make_file(f, &st, lfd, dfd, name);
		if (S_ISLNK(st.st_mode))
			return make_symlink(f, &st, lfd, dfd, name);
		return make_fifo(f, &st, lfd, dfd, name);
	}

	if (depth >= FLATTEN_MAX_DEPTH)
		return fail(f, 0, "directories nested too deep");
	cleanup_close int lsub = openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lsub < 0)
		return fail(f, errno, "open directory");
	/* An opaque directory hides everything the layers below had there. */
	if (have && (!S_ISDIR(dst.st_mode) || is_opaque(lsub))) {
		if (fs_remove_tree_at(dfd, name, f->err) < 0)
			return berr_wrap(f->err, "layer %s", f->layer);
		have = false;
	}
	if (!have && mkdirat(dfd, name, 0700) < 0)
		return fail(f, errno, "create directory");
	cleanup_close int dsub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dsub < 0)
		return fail(f, errno, "open directory in the destination");
	if (have && clear_xattrs(f, dsub) < 0)
		return -1;
	if (copy_meta(f, &st, lsub, -1, dsub, -1, name) < 0)
		return -1;
	if (merge_dir(f, lsub, dsub, depth + 1) < 0)
		return -1;
	/* Last: creating the children changed the times. */
	return set_times(f, &st, dsub, -1, name);
}

static int merge_dir(struct flatten *f, int lfd, int dfd, int depth)
{
	cleanup_closedir DIR *d = dir_stream(lfd);
	if (!d)
		return fail(f, errno, "read directory");
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!fs_name_is_plain(de->d_name))
			continue;
		size_t saved;
		if (path_push(f, de->d_name, &saved) < 0)
			return -1;
		int r = merge_entry(f, lfd, dfd, de->d_name, depth);
		path_pop(f, saved);
		if (r < 0)
			return -1;
		errno = 0;
	}
	if (errno)
		return fail(f, errno, "read directory");
	return 0;
}

static int merge_layer(struct flatten *f, int lfd)
{
	struct stat st;
	if (fstat(lfd, &st) < 0)
		return fail(f, errno, "stat");
	if (is_opaque(lfd) && remove_children(f, f->dst) < 0)
		return -1;
	if (clear_xattrs(f, f->dst) < 0 || copy_meta(f, &st, lfd, -1, f->dst, -1, ".") < 0)
		return -1;
	links_reset(f);
	if (merge_dir(f, lfd, f->dst, 0) < 0)
		return -1;
	return set_times(f, &st, f->dst, -1, ".");
}

static int check_empty(int fd, const char *dst, struct berr *err)
{
	cleanup_closedir DIR *d = dir_stream(fd);
	if (!d)
		return berr_set(err, errno, "%s", dst);
	struct dirent *de;
	while ((de = readdir(d)))
		if (fs_name_is_plain(de->d_name))
			return berr_set(err, ENOTEMPTY, "%s", dst);
	return 0;
}

int layer_flatten(const char *const *layer_dirs, size_t n, const char *dst, struct berr *err)
{
	cleanup_close int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, errno, "%s", dst);
	if (check_empty(dfd, dst, err) < 0)
		return -1;
	struct flatten f = {.dst = dfd, .err = err};
	f.list = malloc(XATTR_BUF);
	f.value = malloc(XATTR_BUF);
	int ret = -1;
	if (!f.list || !f.value) {
		berr_set(err, ENOMEM, "flatten into %s", dst);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		f.layer = layer_dirs[i];
		cleanup_close int lfd = open(layer_dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lfd < 0) {
			berr_set(err, errno, "layer %s", layer_dirs[i]);
			goto out;
		}
		if (merge_layer(&f, lfd) < 0)
			goto out;
	}
	ret = 0;
out:
	free(f.list);
	free(f.value);
	free(f.links);
	free(f.arena);
	return ret;
}
