/* Extracting one image layer (an uncompressed tar stream) into an empty
 * directory, in the form overlayfs reads: a whiteout `.wh.NAME` becomes a
 * 0/0 character device NAME, `.wh..wh..opq` marks its directory with
 * trusted.overlay.opaque=y.
 *
 * Layer safety. A layer is hostile input; nothing outside the layer
 * directory may be created, changed or chmod-ed. Every directory is opened
 * one component at a time with O_NOFOLLOW from the layer's own fd, every
 * change is an *at() call on such a verified directory fd (or on the fd of
 * the entry just created), and the last component is never followed.
 * What each kind of entry gets:
 *   fails the unpack (message names the layer and the entry):
 *     absolute names; ".." components; a name over PATH_MAX, a component
 *     over NAME_MAX, more than UNPACK_MAX_DEPTH directories deep; an entry
 *     whose directory path goes through a symlink or a non-directory; the
 *     root ("", ".", "./") as anything but a directory; a bare ".wh." or a
 *     whiteout naming "." or ".."; a hardlink whose target is absolute,
 *     has "..", goes through a symlink, is a directory, a whiteout or not
 *     in this layer; an owner id out of range; a malformed or truncated tar.
 *   skipped with a warning:
 *     character and block devices, sockets and unknown types; aufs
 *     metadata (".wh..wh.*" other than the opaque marker).
 *   kept without the offending part, with a warning:
 *     xattrs overlayfs would read as its own (trusted.overlay.*,
 *     user.overlay.*): they would forge whiteouts and opaque directories.
 * Symlink targets are stored as they are: they are data, resolved later
 * only inside a root (RESOLVE_IN_ROOT) or by the kernel inside the
 * instance's mount namespace.
 *
 * Within one layer a later entry replaces an earlier one (a whiteout too),
 * except a directory over a directory, which keeps its content and takes
 * the new metadata. A directory that replaces a whiteout of the same layer
 * is made opaque: the whiteout said the lower one is gone. */
#include "oci/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/lazy.h"
#include "common/log.h"
#include "oci/layer_meta.h"

#define UNPACK_BUF_SIZE	 (256 * 1024)
#define UNPACK_MAX_DEPTH 256
/* Bounds the memory kept for directory mtimes (set at the end): about
 * 300,000 directories of typical path length. */
#define UNPACK_DIR_ARENA_MAX (16u << 20)
#define UNPACK_QNAME_MAX     160

struct dir_times {
	size_t off, len; /* path in the arena */
	struct timespec ts[2];
};

struct unpack {
	int root;
	const struct layer_source *src;
	const char *what;
	struct layer_stats *stats;
	struct berr *err;
	struct berr src_err;
	bool src_failed;
	bool can_chown;
	uid_t euid;
	gid_t egid;
	int umask; /* the process umask, -1 if unknown */
	bool root_setgid;
	unsigned char *buf;

	/* The current entry: normalized path, and quoted raw name for messages. */
	char path[PATH_MAX];
	size_t path_len;
	char qname[UNPACK_QNAME_MAX];

	/* Last directory an entry went into. Safe to reuse: a directory fd keeps
	 * naming the same inode, and it is dropped when that directory (or one
	 * above it) is removed by a later entry. */
	char cache[PATH_MAX];
	size_t cache_len;
	int cache_fd;
	bool cache_setgid; /* new files there take the directory's group */

	/* Directory times, applied last: creating children changes them. */
	struct dir_times *dirs;
	size_t n_dirs, cap_dirs;
	char *arena;
	size_t arena_len, arena_cap;
};

#define entry_wrap(u)		 berr_wrap((u)->err, "%s: entry %s", (u)->what, (u)->qname)
#define entry_fail(u, code, ...) (berr_set((u)->err, (code), __VA_ARGS__), entry_wrap(u))

static void quote_prefix(const char *path, size_t len, char *out, size_t cap)
{
	char tmp[PATH_MAX];
	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, path, len);
	tmp[len] = '\0';
	layer_quote(tmp, out, cap);
}

static la_ssize_t source_read(struct archive *a, void *data, const void **buf)
{
	struct unpack *u = data;
	(void)a;
	ssize_t n = u->src->read(u->src->ctx, u->buf, UNPACK_BUF_SIZE, &u->src_err);
	if (n < 0) {
		u->src_failed = true;
		return ARCHIVE_FATAL;
	}
	*buf = u->buf;
	return n;
}

/* The cause of a failed libarchive call: the source's own error when the
 * stream could not be read, libarchive's otherwise. */
static void archive_cause(struct unpack *u, struct archive *a)
{
	if (u->src_failed) {
		*u->err = u->src_err;
		return;
	}
	const char *msg = LAZY(archive_error_string)(a);
	berr_set(u->err, 0, "%s", msg ? msg : "unreadable tar stream");
}

static int archive_fail(struct unpack *u, struct archive *a, const char *when)
{
	archive_cause(u, a);
	if (u->src_failed)
		return berr_wrap(u->err, "%s", u->what);
	return berr_wrap(u->err, "%s: %s", u->what, when);
}

/* Writes raw without "./", empty components and a trailing '/'. */
static int normalize(struct unpack *u, const char *raw, const char *role, char *out,
		     size_t *out_len)
{
	if (raw[0] == '/')
		return entry_fail(u, 0, "%s is an absolute path", role);
	size_t o = 0;
	int depth = 0;
	const char *p = raw;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 1 && s[0] == '.')
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return entry_fail(u, 0, "%s has a \"..\" component", role);
		if (n > NAME_MAX)
			return entry_fail(u, ENAMETOOLONG, "%s has a component over %d bytes", role,
					  NAME_MAX);
		if (++depth > UNPACK_MAX_DEPTH)
			return entry_fail(u, 0, "%s is nested deeper than %d directories", role,
					  UNPACK_MAX_DEPTH);
		if (o + 1 + n >= PATH_MAX)
			return entry_fail(u, ENAMETOOLONG, "%s is longer than %d bytes", role,
					  PATH_MAX - 1);
		if (o)
			out[o++] = '/';
		memcpy(out + o, s, n);
		o += n;
	}
	out[o] = '\0';
	*out_len = o;
	return 0;
}

static void cache_drop(struct unpack *u)
{
	if (u->cache_fd >= 0)
		close(u->cache_fd);
	u->cache_fd = -1;
	u->cache_len = 0;
}

static void cache_set(struct unpack *u, const char *path, size_t len, int fd, bool setgid)
{
	cache_drop(u);
	memcpy(u->cache, path, len);
	u->cache_len = len;
	u->cache_fd = fd;
	u->cache_setgid = setgid;
}

/* Called when the tree at path was removed: the cached directory may have
 * been in it. */
static void cache_forget_under(struct unpack *u, const char *path, size_t len)
{
	if (u->cache_fd >= 0 && u->cache_len >= len && !memcmp(u->cache, path, len) &&
	    (u->cache_len == len || u->cache[len] == '/'))
		cache_drop(u);
}

static int set_opaque(int fd, const char *path, size_t len, struct berr *err)
{
	if (fsetxattr(fd, LAYER_OPAQUE_XATTR, "y", 1, 0) < 0) {
		char q[UNPACK_QNAME_MAX];
		quote_prefix(path, len, q, sizeof(q));
		return berr_set(err, errno,
				"mark %s opaque (" LAYER_OPAQUE_XATTR
				", needs root and a file system "
				"with trusted xattrs)",
				len ? q : "the layer root");
	}
	return 0;
}

/* Opens a directory the walk just made: mode 0755 whatever the umask. */
static int open_new_dir(int at, const char *comp, const char *path, size_t plen, struct berr *err)
{
	char q[UNPACK_QNAME_MAX];
	int fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0755) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		quote_prefix(path, plen, q, sizeof(q));
		return berr_set(err, e, "open directory %s", q);
	}
	return fd;
}

/* Opens one component of a walk: the directory comp under cur, which is
 * path[0..plen) in the layer. Never follows a symlink. With create, makes a
 * missing directory (0755) and turns a whiteout into an opaque directory. */
static int walk_step(int cur, const char *comp, const char *path, size_t plen, bool create,
		     struct berr *err)
{
	int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	struct stat st;
	char q[UNPACK_QNAME_MAX];
	quote_prefix(path, plen, q, sizeof(q));
	if (e == ENOENT && create) {
		if (mkdirat(cur, comp, 0755) < 0)
			return berr_set(err, errno, "create directory %s", q);
		return open_new_dir(cur, comp, path, plen, err);
	}
	if (e == ENOENT)
		return berr_set(err, ENOENT, "%s is not in this layer", q);
	if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berr_set(err, e, "open %s", q);
	if (S_ISLNK(st.st_mode))
		return berr_set(err, 0,
				"%s is a symlink: entries are never written through symlinks", q);
	if (!S_ISCHR(st.st_mode))
		return berr_set(err, ENOTDIR, "%s", q);
	if (!create)
		return berr_set(err, 0, "%s is a whiteout in this layer", q);
	/* Only whiteouts are character devices in a layer. */
	if (unlinkat(cur, comp, 0) < 0 || mkdirat(cur, comp, 0755) < 0)
		return berr_set(err, errno, "replace whiteout %s", q);
	fd = open_new_dir(cur, comp, path, plen, err);
	if (fd >= 0 && set_opaque(fd, path, plen, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Opens the directory path[0..len) from startfd, the directory at
 * path[0..skip), one component at a time (see walk_step). Returns a new fd. */
static int walk_dir(int startfd, const char *path, size_t skip, size_t len, bool create,
		    struct berr *err)
{
	int cur = startfd; /* borrowed until the first step */
	char comp[NAME_MAX + 1];
	size_t i = skip;
	while (i < len) {
		size_t s = i;
		while (i < len && path[i] != '/')
			i++;
		size_t n = i - s;
		int fd = -1;
		if (n == 0 || n > NAME_MAX) {
			berr_set(err, EINVAL, "bad path component");
		} else {
			memcpy(comp, path + s, n);
			comp[n] = '\0';
			fd = walk_step(cur, comp, path, i, create, err);
		}
		if (cur != startfd)
			close(cur);
		if (fd < 0)
			return -1;
		cur = fd;
		i++;
	}
	if (cur == startfd && (cur = fcntl(startfd, F_DUPFD_CLOEXEC, 3)) < 0)
		return berr_set(err, errno, "dup");
	return cur;
}

/* The directory path[0..len) inside the layer, as a borrowed fd (valid
 * until the next call): from the cache when the previous entry went to the
 * same directory or one above it. */
static int enter_dir(struct unpack *u, const char *path, size_t len, bool create, struct berr *err)
{
	if (len == 0)
		return u->root;
	if (u->cache_fd >= 0 && u->cache_len == len && !memcmp(u->cache, path, len))
		return u->cache_fd;
	int start = u->root;
	size_t skip = 0;
	if (u->cache_fd >= 0 && u->cache_len < len && path[u->cache_len] == '/' &&
	    !memcmp(u->cache, path, u->cache_len)) {
		start = u->cache_fd;
		skip = u->cache_len + 1;
	}
	int fd = walk_dir(start, path, skip, len, create, err);
	if (fd < 0)
		return -1;
	struct stat st;
	cache_set(u, path, len, fd, fstat(fd, &st) < 0 || (st.st_mode & S_ISGID));
	return fd;
}

/* Makes room for a new entry at pfd/base (the current entry's path). A
 * directory is kept when want_dir; anything else there goes. */
static int clear_slot(struct unpack *u, int pfd, const char *base, bool want_dir, bool *kept_dir,
		      bool *was_whiteout)
{
	struct stat st;
	*kept_dir = *was_whiteout = false;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return entry_fail(u, errno, "stat");
	}
	if (S_ISDIR(st.st_mode)) {
		if (want_dir) {
			*kept_dir = true;
			return 0;
		}
		if (fs_remove_tree_at(pfd, base, u->err) < 0)
			return entry_wrap(u);
		cache_forget_under(u, u->path, u->path_len);
		return 0;
	}
	*was_whiteout = S_ISCHR(st.st_mode);
	if (unlinkat(pfd, base, 0) < 0)
		return entry_fail(u, errno, "replace the earlier entry");
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = LAZY(archive_entry_mtime)(e);
	ts[1].tv_nsec = LAZY(archive_entry_mtime_nsec)(e);
	if (!LAZY(archive_entry_mtime_is_set)(e))
		ts[1].tv_sec = ts[1].tv_nsec = 0;
	if (LAZY(archive_entry_atime_is_set)(e)) {
		ts[0].tv_sec = LAZY(archive_entry_atime)(e);
		ts[0].tv_nsec = LAZY(archive_entry_atime_nsec)(e);
	} else {
		ts[0] = ts[1];
	}
	for (int i = 0; i < 2; i++)
		if (ts[i].tv_nsec < 0 || ts[i].tv_nsec > 999999999)
			ts[i].tv_nsec = 0;
}

static int record_dir_times(struct unpack *u, const char *path, size_t len, struct archive_entry *e)
{
	if (u->n_dirs == u->cap_dirs) {
		size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 256;
		if (cap * sizeof(*u->dirs) > UNPACK_DIR_ARENA_MAX)
			return entry_fail(u, 0, "layer has too many directories (over %zu)",
					  u->cap_dirs);
		struct dir_times *d = realloc(u->dirs, cap * sizeof(*d));
		if (!d)
			return entry_fail(u, ENOMEM, "record directory times");
		u->dirs = d;
		u->cap_dirs = cap;
	}
	if (u->arena_len + len > u->arena_cap) {
		size_t cap = u->arena_cap ? u->arena_cap : 16384;
		while (cap < u->arena_len + len)
			cap *= 2;
		if (cap > UNPACK_DIR_ARENA_MAX)
			return entry_fail(u, 0, "layer has too many directories (over %zu)",
					  u->n_dirs);
		char *a = realloc(u->arena, cap);
		if (!a)
			return entry_fail(u, ENOMEM, "record directory times");
		u->arena = a;
		u->arena_cap = cap;
	}
	struct dir_times *d = &u->dirs[u->n_dirs++];
	if (len)
		memcpy(u->arena + u->arena_len, path, len);
	d->off = u->arena_len;
	d->len = len;
	u->arena_len += len;
	entry_times(e, d->ts);
	return 0;
}

static int apply_dir_times(struct unpack *u)
{
	for (size_t i = 0; i < u->n_dirs; i++) {
		struct dir_times *d = &u->dirs[i];
		const char *path = d->len ? u->arena + d->off : "";
		struct berr ignored;
		/* A directory a later entry replaced is gone: nothing to do. */
		int fd = enter_dir(u, path, d->len, false, &ignored);
		if (fd < 0)
			continue;
		if (futimens(fd, d->ts) < 0) {
			char q[UNPACK_QNAME_MAX];
			quote_prefix(path, d->len, q, sizeof(q));
			berr_set(u->err, errno, "set the times of directory %s", q);
			return berr_wrap(u->err, "%s", u->what);
		}
	}
	return 0;
}

enum {
	META_DIR = 1,	   /* times are set at the end */
	META_OWNER_OK = 2, /* created with the entry's owner already */
	META_MODE_OK = 4,  /* created with the entry's mode already */
};

/* Owner, mode, xattrs and (except for directories) times, in that order:
 * chown clears setuid bits and security.capability, writes clear the
 * capability too, and every change but the times moves ctime only. The
 * entry is fd when it could be opened, else pfd/base (symlinks). */
static int apply_meta(struct unpack *u, struct archive_entry *e, int fd, int pfd, const char *base,
		      unsigned flags)
{
	la_int64_t uid = LAZY(archive_entry_uid)(e), gid = LAZY(archive_entry_gid)(e);
	if (uid < 0 || uid >= (la_int64_t)UINT32_MAX || gid < 0 || gid >= (la_int64_t)UINT32_MAX)
		return entry_fail(u, 0, "owner %lld:%lld is out of range", (long long)uid,
				  (long long)gid);
	if (u->can_chown && !(flags & META_OWNER_OK)) {
		int r = fd >= 0 ? fchown(fd, (uid_t)uid, (gid_t)gid)
				: fchownat(pfd, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
		if (r < 0)
			return entry_fail(u, errno, "chown %lld:%lld", (long long)uid,
					  (long long)gid);
	}
	if (fd >= 0 && !(flags & META_MODE_OK) &&
	    fchmod(fd, LAZY(archive_entry_perm)(e) & 07777) < 0)
		return entry_fail(u, errno, "chmod");

	const char *name;
	const void *value;
	size_t size;
	LAZY(archive_entry_xattr_reset)(e);
	while (LAZY(archive_entry_xattr_next)(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || !*name)
			continue;
		if (layer_xattr_is_overlay(name)) {
			char q[UNPACK_QNAME_MAX];
			layer_quote(name, q, sizeof(q));
			log_warn("%s: entry %s: xattr %s ignored (reserved for overlayfs)", u->what,
				 u->qname, q);
			continue;
		}
		int r = fd >= 0 ? fsetxattr(fd, name, value, size, 0)
				: layer_lsetxattr_at(pfd, base, name, value, size);
		if (r < 0) {
			int e2 = errno;
			char q[UNPACK_QNAME_MAX];
			layer_quote(name, q, sizeof(q));
			if (e2 == ENOSPC || e2 == EDQUOT || e2 == EIO)
				return entry_fail(u, e2, "set xattr %s", q);
			log_warn("%s: entry %s: xattr %s not kept: %s", u->what, u->qname, q,
				 strerror(e2));
		}
	}
	if (flags & META_DIR)
		return 0;
	struct timespec ts[2];
	entry_times(e, ts);
	int r = fd >= 0 ? futimens(fd, ts) : utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return entry_fail(u, errno, "set times");
	return 0;
}

static int make_file(struct unpack *u, struct archive *a, struct archive_entry *e, int pfd,
		     const char *base)
{
	/* Most files need neither chown nor chmod when created with the right
	 * mode by the right user: two system calls fewer per file. */
	mode_t perm = LAZY(archive_entry_perm)(e) & 07777;
	unsigned meta = 0;
	mode_t create_mode = 0600;
	if (u->umask >= 0 && !(perm & 07000) && !(perm & (mode_t)u->umask)) {
		create_mode = perm;
		meta |= META_MODE_OK;
	}
	bool parent_setgid = pfd == u->root ? u->root_setgid : u->cache_setgid;
	if (LAZY(archive_entry_uid)(e) == (la_int64_t)u->euid &&
	    LAZY(archive_entry_gid)(e) == (la_int64_t)u->egid && !parent_setgid)
		meta |= META_OWNER_OK;
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	cleanup_close int fd = openat(pfd, base, flags, create_mode);
	if (fd < 0 && errno == EEXIST) {
		bool kept, wh;
		if (clear_slot(u, pfd, base, false, &kept, &wh) < 0)
			return -1;
		fd = openat(pfd, base, flags, create_mode);
	}
	if (fd < 0)
		return entry_fail(u, errno, "create");
	off_t end = 0;
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = LAZY(archive_read_data_block)(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			archive_cause(u, a);
			return entry_wrap(u);
		}
		if (off < 0)
			return entry_fail(u, 0, "bad data offset");
		if (size && fs_write_all(fd, buf, size, (off_t)off) < 0)
			return entry_fail(u, errno, "write");
		if ((off_t)off + (off_t)size > end)
			end = (off_t)off + (off_t)size;
		u->stats->bytes += size;
	}
	/* A sparse file can end in a hole. */
	if (LAZY(archive_entry_size_is_set)(e) && LAZY(archive_entry_size)(e) > end &&
	    ftruncate(fd, (off_t)LAZY(archive_entry_size)(e)) < 0)
		return entry_fail(u, errno, "set size");
	return apply_meta(u, e, fd, pfd, base, meta);
}

static int make_dir(struct unpack *u, struct archive_entry *e, int pfd, const char *base)
{
	bool kept = false, wh = false;
	if (mkdirat(pfd, base, 0700) < 0) {
		if (errno != EEXIST)
			return entry_fail(u, errno, "create directory");
		if (clear_slot(u, pfd, base, true, &kept, &wh) < 0)
			return -1;
		if (!kept && mkdirat(pfd, base, 0700) < 0)
			return entry_fail(u, errno, "create directory");
	}
	int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_fail(u, errno, "open directory");
	/* The next entries most likely go into this directory; pfd may be
	 * closed from here on. */
	cache_set(u, u->path, u->path_len, fd, LAZY(archive_entry_perm)(e) & S_ISGID);
	if (wh && set_opaque(fd, u->path, u->path_len, u->err) < 0)
		return entry_wrap(u);
	if (apply_meta(u, e, fd, -1, NULL, META_DIR) < 0)
		return -1;
	return record_dir_times(u, u->path, u->path_len, e);
}

static int make_symlink(struct unpack *u, struct archive_entry *e, int pfd, const char *base)
{
	const char *target = LAZY(archive_entry_symlink)(e);
	if (!target || !*target)
		return entry_fail(u, 0, "symlink without a target");
	if (strnlen(target, PATH_MAX) >= PATH_MAX)
		return entry_fail(u, ENAMETOOLONG, "symlink target is longer than %d bytes",
				  PATH_MAX - 1);
	if (symlinkat(target, pfd, base) < 0) {
		bool kept, wh;
		if (errno != EEXIST)
			return entry_fail(u, errno, "create symlink");
		if (clear_slot(u, pfd, base, false, &kept, &wh) < 0)
			return -1;
		if (symlinkat(target, pfd, base) < 0)
			return entry_fail(u, errno, "create symlink");
	}
	return apply_meta(u, e, -1, pfd, base, 0);
}

static int make_fifo(struct unpack *u, struct archive_entry *e, int pfd, const char *base)
{
	if (mknodat(pfd, base, S_IFIFO | 0600, 0) < 0) {
		bool kept, wh;
		if (errno != EEXIST)
			return entry_fail(u, errno, "create fifo");
		if (clear_slot(u, pfd, base, false, &kept, &wh) < 0)
			return -1;
		if (mknodat(pfd, base, S_IFIFO | 0600, 0) < 0)
			return entry_fail(u, errno, "create fifo");
	}
	/* Opening a FIFO for reading without O_NONBLOCK would wait for a writer. */
	cleanup_close int fd = openat(pfd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_fail(u, errno, "open fifo");
	return apply_meta(u, e, fd, pfd, base, 0);
}

static int make_hardlink(struct unpack *u, const char *raw_target, int pfd, const char *base)
{
	char target[PATH_MAX];
	size_t tlen;
	if (normalize(u, raw_target, "hardlink target", target, &tlen) < 0)
		return -1;
	if (tlen == 0)
		return entry_fail(u, 0, "hardlink to the layer root");
	char *slash = memrchr(target, '/', tlen);
	const char *tbase = slash ? slash + 1 : target;
	size_t tdir_len = slash ? (size_t)(slash - target) : 0;
	if (!strncmp(tbase, LAYER_WHITEOUT_PREFIX, 4))
		return entry_fail(u, 0, "hardlink to a whiteout");
	char q[UNPACK_QNAME_MAX];
	layer_quote(target, q, sizeof(q));
	cleanup_close int tfd = tdir_len ? walk_dir(u->root, target, 0, tdir_len, false, u->err)
					 : fcntl(u->root, F_DUPFD_CLOEXEC, 3);
	if (tfd < 0)
		return berr_wrap(u->err, "%s: entry %s: hardlink target %s", u->what, u->qname, q);
	struct stat tst, st;
	if (fstatat(tfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(u, errno == ENOENT ? 0 : errno, "hardlink target %s%s", q,
				  errno == ENOENT ? " is not in this layer" : "");
	if (S_ISDIR(tst.st_mode))
		return entry_fail(u, 0, "hardlink target %s is a directory", q);
	if (S_ISCHR(tst.st_mode))
		return entry_fail(u, 0, "hardlink target %s is a whiteout", q);
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (st.st_dev == tst.st_dev && st.st_ino == tst.st_ino)
			return 0; /* already that file */
		bool kept, wh;
		if (clear_slot(u, pfd, base, false, &kept, &wh) < 0)
			return -1;
	}
	if (linkat(tfd, tbase, pfd, base, 0) < 0)
		return entry_fail(u, errno, "hardlink to %s", q);
	return 0;
}

static int make_whiteout(struct unpack *u, const char *dir, size_t dir_len, const char *base)
{
	if (!strcmp(base, LAYER_OPAQUE_MARKER)) {
		int fd = enter_dir(u, dir, dir_len, true, u->err);
		if (fd < 0)
			return entry_wrap(u);
		if (set_opaque(fd, dir, dir_len, u->err) < 0)
			return entry_wrap(u);
		return 0;
	}
	/* base points into u->path, which is rewritten below. */
	char name[NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", base + 4);
	if (!fs_name_is_plain(name))
		return entry_fail(u, 0, "invalid whiteout (it names no file)");
	if (!strncmp(name, LAYER_WHITEOUT_PREFIX, 4)) {
		log_warn("%s: entry %s: aufs metadata skipped", u->what, u->qname);
		u->stats->skipped++;
		return 0;
	}
	int pfd = enter_dir(u, dir, dir_len, true, u->err);
	if (pfd < 0)
		return entry_wrap(u);
	/* The path the whiteout stands for, so a removed directory drops out
	 * of the cache. */
	size_t nlen = strlen(name);
	u->path_len = dir_len ? dir_len + 1 + nlen : nlen;
	if (dir_len)
		u->path[dir_len] = '/';
	memmove(u->path + (dir_len ? dir_len + 1 : 0), name, nlen + 1);
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) == 0)
		return 0;
	if (errno != EEXIST)
		return entry_fail(u, errno, "create whiteout");
	bool kept, wh;
	if (clear_slot(u, pfd, name, false, &kept, &wh) < 0)
		return -1;
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return entry_fail(u, errno, "create whiteout");
	return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e)
{
	const char *raw = LAZY(archive_entry_pathname)(e);
	if (!raw)
		raw = "";
	layer_quote(raw, u->qname, sizeof(u->qname));
	if (normalize(u, raw, "name", u->path, &u->path_len) < 0)
		return -1;
	const char *hardlink = LAZY(archive_entry_hardlink)(e);
	mode_t type = LAZY(archive_entry_filetype)(e);

	if (u->path_len == 0) {
		if (hardlink || type != AE_IFDIR)
			return entry_fail(u, 0,
					  "replaces the layer's root directory with a "
					  "non-directory");
		if (apply_meta(u, e, u->root, -1, NULL, META_DIR) < 0)
			return -1;
		u->root_setgid = LAZY(archive_entry_perm)(e) & S_ISGID;
		return record_dir_times(u, "", 0, e);
	}

	char *slash = memrchr(u->path, '/', u->path_len);
	const char *base = slash ? slash + 1 : u->path;
	size_t dir_len = slash ? (size_t)(slash - u->path) : 0;

	if (!strncmp(base, LAYER_WHITEOUT_PREFIX, 4)) {
		char dir[PATH_MAX];
		memcpy(dir, u->path, dir_len);
		dir[dir_len] = '\0';
		return make_whiteout(u, dir, dir_len, base);
	}
	if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK &&
	    type != AE_IFIFO) {
		const char *kind = type == AE_IFCHR    ? "character device"
				   : type == AE_IFBLK  ? "block device"
				   : type == AE_IFSOCK ? "socket"
						       : "entry of unknown type";
		log_warn("%s: entry %s: %s skipped (device nodes and sockets are not created "
			 "from image layers)",
			 u->what, u->qname, kind);
		u->stats->skipped++;
		return 0;
	}

	int pfd = enter_dir(u, u->path, dir_len, true, u->err);
	if (pfd < 0)
		return entry_wrap(u);
	if (hardlink)
		return make_hardlink(u, hardlink, pfd, base);
	switch (type) {
	case AE_IFREG:
		return make_file(u, a, e, pfd, base);
	case AE_IFDIR:
		return make_dir(u, e, pfd, base);
	case AE_IFLNK:
		return make_symlink(u, e, pfd, base);
	default:
		return make_fifo(u, e, pfd, base);
	}
}

/* The caller hashes everything it hands out (diff_id): read what follows
 * the end-of-archive blocks too, so its check sees the whole stream. */
static int drain(struct unpack *u)
{
	for (;;) {
		ssize_t n = u->src->read(u->src->ctx, u->buf, UNPACK_BUF_SIZE, u->err);
		if (n < 0)
			return berr_wrap(u->err, "%s", u->what);
		if (n == 0)
			return 0;
	}
}

/* Read from /proc: umask() would change it for every thread meanwhile. */
static int process_umask(void)
{
	char *status;
	size_t len;
	if (fs_read_file("/proc/self/status", 1 << 16, &status, &len, NULL) < 0)
		return -1;
	int mask = -1;
	const char *p = strstr(status, "\nUmask:");
	if (p) {
		char *end;
		long v = strtol(p + 8, &end, 8);
		if (end != p + 8 && v >= 0 && v <= 0777)
			mask = (int)v;
	}
	free(status);
	return mask;
}

int layer_unpack(int dirfd, const struct layer_source *src, const char *what,
		 struct layer_stats *stats, struct berr *err)
{
	struct layer_stats local_stats;
	struct unpack u = {
	    .root = dirfd,
	    .src = src,
	    .what = what ? what : "layer",
	    .stats = stats ? stats : &local_stats,
	    .err = err,
	    .can_chown = geteuid() == 0,
	    .euid = geteuid(),
	    .egid = getegid(),
	    .umask = process_umask(),
	    .cache_fd = -1,
	};
	memset(u.stats, 0, sizeof(*u.stats));
	if (lazy_require(LAZY_ARCHIVE, err) < 0)
		return berr_wrap(err, "%s", u.what);
	/* The layer root is the instance's "/": readable by all unless the
	 * layer says otherwise with a "./" entry. */
	if (fchmod(dirfd, 0755) < 0)
		return berr_set(err, errno, "%s: chmod the layer directory", u.what);
	u.buf = malloc(UNPACK_BUF_SIZE);
	struct archive *a = LAZY(archive_read_new)();
	int ret = -1;
	if (!u.buf || !a) {
		berr_set(err, ENOMEM, "%s", u.what);
		goto out;
	}
	LAZY(archive_read_support_format_tar)(a);
	LAZY(archive_read_support_format_empty)(a);
	if (LAZY(archive_read_open)(a, &u, NULL, source_read, NULL) != ARCHIVE_OK) {
		archive_fail(&u, a, "not a tar stream");
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = LAZY(archive_read_next_header)(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_RETRY)
			continue;
		if (r < ARCHIVE_WARN) {
			if (u.stats->entries) {
				char when[UNPACK_QNAME_MAX + 32];
				snprintf(when, sizeof(when), "after entry %s", u.qname);
				archive_fail(&u, a, when);
			} else {
				archive_fail(&u, a, "first entry");
			}
			goto out;
		}
		u.stats->entries++;
		if (unpack_entry(&u, a, e) < 0)
			goto out;
	}
	if (apply_dir_times(&u) < 0 || drain(&u) < 0)
		goto out;
	ret = 0;
out:
	if (a)
		LAZY(archive_read_free)(a);
	cache_drop(&u);
	free(u.buf);
	free(u.dirs);
	free(u.arena);
	return ret;
}
