/* The instance's root file system, assembled inside its own mount namespace.
 *
 * Every destination is resolved inside the root with fs_open_in_root() and
 * mounted onto /proc/self/fd/N of the resulting descriptor, never by joining
 * strings: a symlink in the image (/dev -> /host/path, /proc -> /) resolves as
 * it would under chroot, so no mount and no file creation can land on the
 * host. Sources are host paths chosen by the caller, never by the image. */
#include "shim/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/lazy.h"
#include "common/mountinfo.h"
#include "common/strv.h"
#include "shim/syscalls.h"

#define FD_PATH_MAX   32
#define LINK_HOPS_MAX 40

static const char *fd_path(char buf[FD_PATH_MAX], int fd)
{
	snprintf(buf, FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

static uint64_t attrs_of_flags(unsigned long flags)
{
	static const struct {
		unsigned long flag;
		uint64_t attr;
	} map[] = {{MS_RDONLY, MOUNT_ATTR_RDONLY},
		   {MS_NOSUID, MOUNT_ATTR_NOSUID},
		   {MS_NODEV, MOUNT_ATTR_NODEV},
		   {MS_NOEXEC, MOUNT_ATTR_NOEXEC},
		   {MS_NODIRATIME, MOUNT_ATTR_NODIRATIME}};
	uint64_t a = 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (flags & map[i].flag)
			a |= map[i].attr;
	if (flags & MS_NOATIME)
		a |= MOUNT_ATTR_NOATIME;
	else if (flags & MS_STRICTATIME)
		a |= MOUNT_ATTR_STRICTATIME;
	return a;
}

#define BIND_ATTR_FLAGS                                                                            \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_STRICTATIME | MS_NODIRATIME)

/* A read-only mount must really be read-only: a remount that silently
 * failed to apply would leave the host's files writable. */
static int check_readonly(int mfd, const char *dest, struct berr *err)
{
	struct statvfs sv;
	if (fstatvfs(mfd, &sv) < 0)
		return berr_set(err, errno, "statvfs %s", dest);
	if (!(sv.f_flag & ST_RDONLY))
		return berr_set(err, 0, "%s: the mount stayed writable after making it read-only",
				dest);
	return 0;
}

/* Remounts the mount whose root mfd is, keeping the flags the kernel locked
 * (nosuid, nodev, noexec inherited from the source) so the call is allowed. */
static int remount_flags(int mfd, unsigned long flags, bool recursive, const char *dest,
			 struct berr *err)
{
	struct mount_attr attr = {.attr_set = attrs_of_flags(flags)};
	if (flags & (MS_NOATIME | MS_STRICTATIME))
		attr.attr_clr = MOUNT_ATTR__ATIME;
	if (sys_mount_setattr(mfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr) == 0)
		return 0;
	if (errno != ENOSYS)
		return berr_set(err, errno, "set mount flags of %s", dest);
	struct statvfs sv;
	if (fstatvfs(mfd, &sv) < 0)
		return berr_set(err, errno, "statvfs %s", dest);
	unsigned long locked = 0;
	if (sv.f_flag & ST_NOSUID)
		locked |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		locked |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		locked |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		locked |= MS_RDONLY;
	char p[FD_PATH_MAX];
	if (mount(NULL, fd_path(p, mfd), NULL, MS_BIND | MS_REMOUNT | flags | locked, NULL) < 0)
		return berr_set(err, errno, "remount %s", dest);
	return 0;
}

/* --- parent side --- */

int rootfs_prepare_binds(struct sandbox *sb, struct berr *err)
{
	for (size_t i = 0; i < sb->n_mounts; i++) {
		struct sb_mount *m = &sb->mounts[i];
		if (m->kind != SBM_BIND || m->content)
			continue;
		int fd = sys_open_tree(AT_FDCWD, m->source,
				       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
					   (m->recursive ? AT_RECURSIVE : 0));
		if (fd < 0) {
			if (errno != ENOSYS)
				return berr_set(err, errno, "bind source %s", m->source);
			if (sb->clone_flags & CLONE_NEWUSER)
				return berr_set(err, errno,
						"user namespace: bind %s: needs the mount API "
						"(open_tree, Linux 5.2+; idmapped layers 5.12+)",
						m->source);
			continue; /* the instance binds by path (kernel < 5.2) */
		}
		m->source_fd = fd;
		/* What was cloned decides the mount point's type, not a lookup
		 * of the path that may since have changed. */
		struct stat st;
		if (fstat(fd, &st) < 0)
			return berr_set(err, errno, "bind source %s", m->source);
		m->source_is_dir = S_ISDIR(st.st_mode);
		if (!(m->flags & BIND_ATTR_FLAGS) && !m->propagation) {
			m->attrs_done = true;
			continue;
		}
		struct mount_attr attr = {.attr_set = attrs_of_flags(m->flags),
					  .propagation = m->propagation & ~(unsigned long)MS_REC};
		if (m->flags & (MS_NOATIME | MS_STRICTATIME))
			attr.attr_clr = MOUNT_ATTR__ATIME;
		if (sys_mount_setattr(fd, "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0),
				      &attr) < 0) {
			if (errno != ENOSYS)
				return berr_set(err, errno, "bind %s: set mount flags", m->source);
			continue; /* remounted once attached (kernel < 5.12) */
		}
		if ((m->flags & MS_RDONLY) && check_readonly(fd, m->destination, err) < 0)
			return -1;
		m->attrs_done = true;
	}
	return 0;
}

void rootfs_close_binds(struct sandbox *sb)
{
	for (size_t i = 0; i < sb->n_mounts; i++)
		if (sb->mounts[i].source_fd >= 0) {
			close(sb->mounts[i].source_fd);
			sb->mounts[i].source_fd = -1;
		}
}

/* --- instance side --- */

/* Opens path inside the root (O_PATH), creating it (a directory or an empty
 * file) and its missing parents first. A dangling symlink is followed by hand,
 * inside the root, to create what it points to. */
static int ensure_in_root(int root_fd, const char *path, bool dir, struct berr *err)
{
	char cur[PATH_MAX];
	if (snprintf(cur, sizeof(cur), "%s", path) >= (int)sizeof(cur))
		return berr_set(err, ENAMETOOLONG, "%s", path);
	for (int hops = 0; hops < LINK_HOPS_MAX; hops++) {
		int fd = fs_open_in_root(root_fd, cur, O_PATH | O_CLOEXEC, 0, NULL);
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) < 0) {
				int e = errno;
				close(fd);
				return berr_set(err, e, "stat %s", path);
			}
			if (dir != !!S_ISDIR(st.st_mode)) {
				close(fd);
				return berr_set(err, dir ? ENOTDIR : EISDIR, "mount point %s",
						path);
			}
			return fd;
		}
		if (errno != ENOENT)
			return berr_set(err, errno, "open %s in the root", path);
		const char *base;
		cleanup_close int pfd = fs_open_parent_in_root(root_fd, cur, true, &base, err);
		if (pfd < 0)
			return berr_wrap(err, "create mount point %s", path);
		struct stat st;
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!S_ISLNK(st.st_mode))
				return berr_set(err, ENOENT, "open %s in the root", path);
			char target[PATH_MAX];
			ssize_t n = readlinkat(pfd, base, target, sizeof(target) - 1);
			if (n <= 0)
				return berr_set(err, n < 0 ? errno : ENOENT, "readlink %s", cur);
			target[n] = '\0';
			char next[PATH_MAX];
			if (target[0] == '/') {
				snprintf(next, sizeof(next), "%s", target);
			} else {
				size_t dlen = (size_t)(base - cur);
				if (snprintf(next, sizeof(next), "%.*s%s", (int)dlen, cur,
					     target) >= (int)sizeof(next))
					return berr_set(err, ENAMETOOLONG, "%s", path);
			}
			memcpy(cur, next, sizeof(cur));
			continue;
		}
		if (dir) {
			if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
				return berr_set(err, errno, "mkdir %s", path);
		} else {
			int f = openat(pfd, base,
				       O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0 && errno != EEXIST)
				return berr_set(err, errno, "create %s", path);
			if (f >= 0)
				close(f);
		}
	}
	return berr_set(err, ELOOP, "mount point %s", path);
}

static int reopen_in_root(int root_fd, const char *dest, struct berr *err)
{
	/* After a mount on /proc/self/fd/N, N still names the directory
	 * underneath; a new lookup crosses into the mount. */
	int fd = fs_open_in_root(root_fd, dest, O_PATH | O_CLOEXEC, 0, err);
	if (fd < 0)
		berr_wrap(err, "reopen %s", dest);
	return fd;
}

static int set_propagation(int root_fd, const struct sb_mount *m, struct berr *err)
{
	if (!m->propagation)
		return 0;
	cleanup_close int mfd = reopen_in_root(root_fd, m->destination, err);
	if (mfd < 0)
		return -1;
	char p[FD_PATH_MAX];
	if (mount(NULL, fd_path(p, mfd), NULL, m->propagation, NULL) < 0)
		return berr_set(err, errno, "set propagation of %s", m->destination);
	return 0;
}

/* A file of an ephemeral instance, in its tmpfs (a path of berth's own). */
static int write_content(const struct sb_mount *m, struct berr *err)
{
	cleanup_close int fd =
	    open(m->source, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return berr_set(err, errno, "create %s", m->source);
	size_t len = strlen(m->content);
	if (write(fd, m->content, len) != (ssize_t)len)
		return berr_set(err, errno, "write %s", m->source);
	return 0;
}

static int mount_bind(struct sandbox *sb, int root_fd, struct sb_mount *m, struct berr *err)
{
	if (m->content && write_content(m, err) < 0)
		return -1;
	if (m->source_fd < 0) {
		struct stat st;
		if (stat(m->source, &st) < 0)
			return berr_set(err, errno, "bind source %s", m->source);
		m->source_is_dir = S_ISDIR(st.st_mode);
	}
	cleanup_close int tfd = ensure_in_root(root_fd, m->destination, m->source_is_dir, err);
	if (tfd < 0)
		return -1;
	char tp[FD_PATH_MAX];
	cleanup_close int mfd = -1;
	if (m->source_fd >= 0) {
		if (sys_move_mount(m->source_fd, "", tfd, "",
				   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return berr_set(err, errno, "bind %s on %s", m->source, m->destination);
		mfd = take_fd(&m->source_fd);
	} else {
		if (mount(m->source, fd_path(tp, tfd), NULL, MS_BIND | (m->recursive ? MS_REC : 0),
			  NULL) < 0)
			return berr_set(err, errno, "bind %s on %s", m->source, m->destination);
		if ((mfd = reopen_in_root(root_fd, m->destination, err)) < 0)
			return -1;
	}
	if (!m->attrs_done) {
		if ((m->flags & BIND_ATTR_FLAGS) &&
		    remount_flags(mfd, m->flags & BIND_ATTR_FLAGS, m->recursive, m->destination,
				  err) < 0)
			return -1;
		if (m->propagation && mount(NULL, fd_path(tp, mfd), NULL, m->propagation, NULL) < 0)
			return berr_set(err, errno, "set propagation of %s", m->destination);
	}
	if ((m->flags & MS_RDONLY) && check_readonly(mfd, m->destination, err) < 0)
		return -1;
	(void)sb;
	return 0;
}

static int mount_fs(struct sandbox *sb, int root_fd, const struct sb_mount *m, struct berr *err)
{
	cleanup_close int tfd = ensure_in_root(root_fd, m->destination, true, err);
	if (tfd < 0)
		return -1;
	char tp[FD_PATH_MAX];
	fd_path(tp, tfd);
	if (mount(m->source ? m->source : m->type, tp, m->type, m->flags, m->data) < 0) {
		int e = errno;
		/* A user namespace may not mount sysfs for a network namespace it
		 * does not own (host network): bind the host's, read-only. */
		if (e == EPERM && !strcmp(m->type, "sysfs") && (sb->clone_flags & CLONE_NEWUSER)) {
			if (mount("/sys", tp, NULL, MS_BIND | MS_REC, NULL) < 0)
				return berr_set(err, errno, "bind /sys on %s", m->destination);
			cleanup_close int mfd = reopen_in_root(root_fd, m->destination, err);
			if (mfd < 0 || remount_flags(mfd, m->flags & BIND_ATTR_FLAGS, true,
						     m->destination, err) < 0)
				return -1;
			return 0;
		}
		return berr_set(err, e, "mount %s on %s", m->type, m->destination);
	}
	return set_propagation(root_fd, m, err);
}

/* Superblock options of a v1 hierarchy that must be repeated to mount it
 * again (the kernel refuses a mismatch); the rest are dropped. */
static bool cgroup_v1_option_kept(const char *w, size_t len)
{
	static const char *const dropped[] = {"rw", "ro", "clone_children", "nsdelegate"};
	for (size_t i = 0; i < ARRAY_SIZE(dropped); i++)
		if (len == strlen(dropped[i]) && !memcmp(w, dropped[i], len))
			return false;
	const char *eq = memchr(w, '=', len);
	return !eq || (eq - w == 4 && !memcmp(w, "name", 4));
}

/* The instance's own cgroup in the hierarchy with these controllers
 * ("memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2), from
 * /proc/self/cgroup ("id:controllers:path" lines). */
static bool own_cgroup_path(const char *self, const char *controllers, char *out, size_t cap)
{
	size_t clen = strlen(controllers);
	for (const char *l = self; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		const char *c1 = memchr(l, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l)) : NULL;
		if (c2 && (size_t)(c2 - c1 - 1) == clen && !memcmp(c1 + 1, controllers, clen)) {
			snprintf(out, cap, "%.*s", (int)(len - (size_t)(c2 + 1 - l)), c2 + 1);
			return true;
		}
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Mounts one hierarchy at sfd: with a cgroup namespace, the hierarchy itself
 * (the namespace roots it at the instance's cgroup); without one, a bind of
 * the instance's own directory, so the rest of the host's tree stays out of
 * sight. */
static int mount_one_cgroup(bool own_ns, const char *self, const char *host_mp, bool v2,
			    const char *opts, int sfd, unsigned long flags, const char *where,
			    struct berr *err)
{
	char tp[FD_PATH_MAX];
	if (own_ns) {
		if (mount(v2 ? "cgroup2" : "cgroup", fd_path(tp, sfd), v2 ? "cgroup2" : "cgroup",
			  flags, v2 ? NULL : opts) < 0)
			return berr_set(err, errno, "mount cgroup (%s) on %s", v2 ? "v2" : opts,
					where);
		return 0;
	}
	char rel[PATH_MAX], src[2 * PATH_MAX];
	if (!own_cgroup_path(self, v2 ? "" : opts, rel, sizeof(rel)))
		return berr_set(err, ENOENT, "cgroup of the instance for %s", where);
	snprintf(src, sizeof(src), "%s%s", host_mp, rel);
	if (mount(src, fd_path(tp, sfd), NULL, MS_BIND | MS_REC, NULL) < 0)
		return berr_set(err, errno, "bind %s on %s", src, where);
	return 0;
}

/* /sys/fs/cgroup inside, mirroring the host's layout. */
static int mount_cgroups(struct sandbox *sb, int root_fd, const struct sb_mount *m,
			 struct berr *err)
{
	bool own_ns = sb->clone_flags & CLONE_NEWCGROUP;
	cleanup_free char *info = NULL;
	cleanup_free char *self = NULL;
	if (fs_read_file("/proc/self/mountinfo", 1 << 20, &info, NULL, err) < 0 ||
	    fs_read_file("/proc/self/cgroup", 1 << 16, &self, NULL, err) < 0)
		return -1;
	cleanup_close int tfd = ensure_in_root(root_fd, m->destination, true, err);
	if (tfd < 0)
		return -1;
	char tp[FD_PATH_MAX];
	unsigned long flags = m->flags | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	cleanup_close int dfd = -1;
	bool tmpfs_done = false;
	char *save_line = NULL;
	for (char *line = strtok_r(info, "\n", &save_line); line;
	     line = strtok_r(NULL, "\n", &save_line)) {
		struct mountinfo_entry e;
		if (mountinfo_parse_line(line, &e) < 0)
			continue;
		bool v2 = !strcmp(e.fstype, "cgroup2");
		if (!v2 && strcmp(e.fstype, "cgroup"))
			continue;
		const char *mp = e.mount_point;
		if (!strcmp(mp, "/sys/fs/cgroup")) {
			if (!v2)
				continue;
			if (mount_one_cgroup(own_ns, self, mp, true, NULL, tfd, flags,
					     m->destination, err) < 0)
				return -1;
			if (!own_ns) {
				cleanup_close int mfd =
				    reopen_in_root(root_fd, m->destination, err);
				if (mfd < 0 || remount_flags(mfd, flags & BIND_ATTR_FLAGS, true,
							     m->destination, err) < 0)
					return -1;
			}
			return 0;
		}
		if (strncmp(mp, "/sys/fs/cgroup/", 15) || !fs_name_is_plain(mp + 15))
			continue;
		const char *name = mp + 15;
		if (!tmpfs_done) {
			if (mount("tmpfs", fd_path(tp, tfd), "tmpfs",
				  flags & ~(unsigned long)MS_RDONLY, "mode=755,size=64k") < 0)
				return berr_set(err, errno, "mount tmpfs on %s", m->destination);
			dfd = fs_open_in_root(root_fd, m->destination, O_RDONLY | O_DIRECTORY, 0,
					      err);
			if (dfd < 0)
				return -1;
			tmpfs_done = true;
		}
		char opts[512] = "";
		if (!v2)
			mountinfo_filter_options(e.super_options, cgroup_v1_option_kept, opts,
						 sizeof(opts));
		if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
			return berr_set(err, errno, "mkdir %s/%s", m->destination, name);
		cleanup_close int sfd =
		    openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			return berr_set(err, errno, "open %s/%s", m->destination, name);
		char where[PATH_MAX];
		snprintf(where, sizeof(where), "%s/%s", m->destination, name);
		if (mount_one_cgroup(own_ns, self, mp, v2, opts, sfd, flags, where, err) < 0)
			return -1;
		if (!own_ns) {
			cleanup_close int mfd =
			    openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (mfd < 0 ||
			    remount_flags(mfd, flags & BIND_ATTR_FLAGS, true, where, err) < 0)
				return mfd < 0 ? berr_set(err, errno, "reopen %s", where) : -1;
		}
	}
	if (tmpfs_done && (m->flags & MS_RDONLY)) {
		if (mount(NULL, fd_path(tp, dfd), NULL, MS_REMOUNT | flags, "mode=755,size=64k") <
		    0)
			return berr_set(err, errno, "remount %s read-only", m->destination);
	}
	return 0;
}

/* The devices every instance gets (major, minor as the kernel numbers them
 * on every architecture). */
static const struct {
	const char *name;
	unsigned int major, minor;
} default_device_nodes[] = {
    {"null", 1, 3},   {"zero", 1, 5},	 {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/* Binds a host file (a device node, /dev/null over a masked file) onto
 * `inside`, read-only: the node stays usable (a device's I/O ignores the
 * mount's read-only flag) but its owner, mode and times, which are the
 * host's own inode, cannot be changed from inside. */
static int bind_host_node(int root_fd, const char *host, const char *inside, struct berr *err)
{
	cleanup_close int tfd = ensure_in_root(root_fd, inside, false, err);
	if (tfd < 0)
		return -1;
	char tp[FD_PATH_MAX];
	if (mount(host, fd_path(tp, tfd), NULL, MS_BIND, NULL) < 0)
		return berr_set(err, errno, "bind %s on %s", host, inside);
	cleanup_close int mfd = reopen_in_root(root_fd, inside, err);
	if (mfd < 0 ||
	    remount_flags(mfd, MS_RDONLY | MS_NOSUID | MS_NOEXEC, false, inside, err) < 0 ||
	    check_readonly(mfd, inside, err) < 0)
		return -1;
	return 0;
}

/* The default devices as nodes of the instance's own (in its /dev tmpfs),
 * as the engines make them: nothing done to them reaches the host's. In a
 * user namespace, where mknod is not allowed, the host's are bound
 * read-only instead. */
static int make_default_devices(struct sandbox *sb, int root_fd, struct berr *err)
{
	bool userns = sb->clone_flags & CLONE_NEWUSER;
	cleanup_close int devfd = ensure_in_root(root_fd, "/dev", true, err);
	if (devfd < 0)
		return berr_wrap(err, "/dev");
	for (size_t i = 0; i < ARRAY_SIZE(default_device_nodes); i++) {
		const char *name = default_device_nodes[i].name;
		char path[32];
		snprintf(path, sizeof(path), "/dev/%s", name);
		if (userns) {
			char host[32];
			snprintf(host, sizeof(host), "/dev/%s", name);
			if (bind_host_node(root_fd, host, path, err) < 0)
				return -1;
			continue;
		}
		dev_t want = makedev(default_device_nodes[i].major, default_device_nodes[i].minor);
		struct stat st;
		if (fstatat(devfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISCHR(st.st_mode) && st.st_rdev == want)
				continue; /* a bundle's /dev that has it already */
			if (unlinkat(devfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
				return berr_set(err, errno, "replace %s", path);
		}
		/* The mode is set apart: mknod applies the umask. */
		if (mknodat(devfd, name, S_IFCHR | 0666, want) < 0 ||
		    fchmodat(devfd, name, 0666, 0) < 0)
			return berr_set(err, errno, "mknod %s", path);
	}
	return 0;
}

static int dev_symlink(int devfd, const char *target, const char *name, struct berr *err)
{
	if (symlinkat(target, devfd, name) < 0 && errno != EEXIST)
		return berr_set(err, errno, "symlink /dev/%s", name);
	return 0;
}

static int setup_devices(struct sandbox *sb, int root_fd, struct berr *err)
{
	if (sb->default_devices) {
		if (make_default_devices(sb, root_fd, err) < 0)
			return -1;
		cleanup_close int devfd =
		    fs_open_in_root(root_fd, "/dev", O_RDONLY | O_DIRECTORY, 0, err);
		if (devfd < 0)
			return berr_wrap(err, "/dev");
		struct stat st;
		if (fstatat(devfd, "ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode))
			unlinkat(devfd, "ptmx", 0);
		if (dev_symlink(devfd, "pts/ptmx", "ptmx", err) < 0 ||
		    dev_symlink(devfd, "/proc/self/fd", "fd", err) < 0 ||
		    dev_symlink(devfd, "/proc/self/fd/0", "stdin", err) < 0 ||
		    dev_symlink(devfd, "/proc/self/fd/1", "stdout", err) < 0 ||
		    dev_symlink(devfd, "/proc/self/fd/2", "stderr", err) < 0)
			return -1;
	}
	/* Devices the instance was given: the host's nodes themselves (their
	 * owner and mode are what the operator set up), bound read-only. */
	for (size_t i = 0; sb->device_hosts && sb->device_hosts[i]; i++)
		if (bind_host_node(root_fd, sb->device_hosts[i], sb->device_paths[i], err) < 0)
			return berr_wrap(err, "device %s", sb->device_hosts[i]);
	return 0;
}

/* A masked path: /dev/null over a file, an empty read-only tmpfs over a
 * directory. */
static int mask(int root_fd, int fd, const char *p, struct berr *err)
{
	char tp[FD_PATH_MAX];
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berr_set(err, errno, "masked path %s", p);
	if (!S_ISDIR(st.st_mode))
		return bind_host_node(root_fd, "/dev/null", p, err) < 0
			   ? berr_wrap(err, "mask %s", p)
			   : 0;
	if (mount("tmpfs", fd_path(tp, fd), "tmpfs", MS_RDONLY, "size=4k") < 0)
		return berr_set(err, errno, "mask %s", p);
	return 0;
}

/* A read-only path: bound onto itself and remounted read-only. */
static int make_readonly(int root_fd, int fd, const char *p, struct berr *err)
{
	char tp[FD_PATH_MAX];
	if (mount(fd_path(tp, fd), tp, NULL, MS_BIND | MS_REC, NULL) < 0)
		return berr_set(err, errno, "bind %s read-only", p);
	cleanup_close int mfd = reopen_in_root(root_fd, p, err);
	if (mfd < 0 ||
	    remount_flags(mfd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true, p, err) < 0 ||
	    check_readonly(mfd, p, err) < 0)
		return -1;
	return 0;
}

/* The masked and read-only paths that exist in the image. */
static int mask_paths(struct sandbox *sb, int root_fd, struct berr *err)
{
	char **lists[] = {sb->masked_paths, sb->readonly_paths};
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		for (size_t i = 0; lists[k] && lists[k][i]; i++) {
			const char *p = lists[k][i];
			cleanup_close int fd =
			    fs_open_in_root(root_fd, p, O_PATH | O_CLOEXEC, 0, NULL);
			if (fd < 0 && errno == ENOENT)
				continue;
			if (fd < 0)
				return berr_set(err, errno, "%s path %s",
						k ? "read-only" : "masked", p);
			if ((k ? make_readonly(root_fd, fd, p, err) : mask(root_fd, fd, p, err)) <
			    0)
				return -1;
		}
	return 0;
}

/* Longest directory prefix shared by all layers, so lowerdir= can list them
 * relative to it: mount(2) copies at most one page of options. */
static size_t common_dir_len(char *const *dirs)
{
	size_t len = strlen(dirs[0]);
	for (size_t i = 1; dirs[i]; i++) {
		size_t k = 0;
		while (k < len && dirs[i][k] == dirs[0][k])
			k++;
		len = k;
	}
	while (len > 0 && dirs[0][len - 1] != '/')
		len--;
	return len; /* includes the trailing '/' */
}

static bool overlay_path_ok(const char *p)
{
	/* overlay splits on ':' and ',' and treats '\' as an escape. */
	return !strpbrk(p, ":,\\");
}

/* lowerdir= for the layers, top first. Paths relative to the layers'
 * common directory take about 65 bytes a layer; when the page runs out
 * (images of some 60 layers), each layer is opened and named by its
 * descriptor, /proc/self/fd/N, about 17 bytes. */
static int overlay_lowerdir(char *const *dirs, size_t base_len, bool by_fd, char *opts, size_t cap,
			    size_t *used, struct berr *err)
{
	size_t nl = strv_len(dirs);
	size_t n = (size_t)snprintf(opts, cap, "lowerdir=");
	for (size_t i = nl; i-- > 0;) {
		char name[32];
		const char *rel = dirs[i] + base_len;
		if (by_fd) {
			/* Closed with every other descriptor before exec. */
			int fd = open(dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				return berr_set(err, errno, "open layer %s", dirs[i]);
			snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
			rel = name;
		} else if (!overlay_path_ok(rel) || !rel[0]) {
			return berr_set(err, 0, "layer %s: path not usable in an overlay mount",
					dirs[i]);
		}
		int w = snprintf(opts + n, cap - n, "%s%s", rel, i ? ":" : "");
		if (w < 0 || (size_t)w >= cap - n)
			return berr_set(err, E2BIG,
					"image has too many layers (%zu) for one overlay mount",
					nl);
		n += (size_t)w;
	}
	*used = n;
	return 0;
}

static int mount_overlay(struct sandbox *sb, struct berr *err)
{
	char *const *dirs = sb->layer_dirs;
	size_t base_len = common_dir_len(dirs);
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%.*s", (int)(base_len ? base_len : 1),
		 base_len ? dirs[0] : "/");
	if (!overlay_path_ok(sb->upper_dir) || !overlay_path_ok(sb->work_dir))
		return berr_set(err, 0, "%s: path not usable in an overlay mount", sb->upper_dir);
	char upper[2 * PATH_MAX + 32];
	int ul =
	    snprintf(upper, sizeof(upper), ",upperdir=%s,workdir=%s", sb->upper_dir, sb->work_dir);
	char opts[4096];
	size_t n = 0;
	bool by_fd = false;
	if (overlay_lowerdir(dirs, base_len, false, opts, sizeof(opts) - (size_t)ul, &n, err) < 0) {
		if (err->code != E2BIG)
			return -1;
		by_fd = true;
		if (overlay_lowerdir(dirs, 0, true, opts, sizeof(opts) - (size_t)ul, &n, err) < 0)
			return -1;
	}
	/* Even a read-only root gets an upper directory: mount points the image
	 * lacks are created there, then the root is remounted read-only. */
	memcpy(opts + n, upper, (size_t)ul + 1);
	if (sb->ephemeral) {
		if (mount("tmpfs", sb->instance_dir, "tmpfs", MS_NODEV, "mode=0700") < 0)
			return berr_set(err, errno, "mount the writable layer's tmpfs on %s",
					sb->instance_dir);
		const char *made[] = {sb->upper_dir, sb->work_dir, sb->mountpoint};
		for (size_t i = 0; i < ARRAY_SIZE(made); i++)
			if (mkdir(made[i], 0755) < 0)
				return berr_set(err, errno, "mkdir %s", made[i]);
	}
	cleanup_close int bfd = open(by_fd ? "/" : base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0 || fchdir(bfd) < 0)
		return berr_set(err, errno, "open layer directory %s", base);
	if (mount("overlay", sb->mountpoint, "overlay", 0, opts) < 0)
		return berr_set(err, errno, "mount overlay of %zu layers on %s", strv_len(dirs),
				sb->mountpoint);
	if (chdir("/") < 0)
		return berr_set(err, errno, "chdir /");
	return 0;
}

static int mount_root(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	if (c->root_mount_fd >= 0) {
		/* Built and attached by the parent (user namespaces). */
		c->root_fd = take_fd(&c->root_mount_fd);
		return 0;
	}
	if (sb->layer_dirs) {
		if (mount_overlay(sb, err) < 0)
			return -1;
	} else {
		if (mount(sb->rootfs_dir, sb->mountpoint, NULL, MS_BIND | MS_REC, NULL) < 0)
			return berr_set(err, errno, "bind the root %s", sb->rootfs_dir);
	}
	c->root_fd = open(sb->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->root_fd < 0)
		return berr_set(err, errno, "open the root %s", sb->mountpoint);
	return 0;
}

static int pivot(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	/* pivot_root(".", ".") stacks the old root on top of the new one;
	 * detaching it leaves the instance with no path to the host's tree. */
	if (fchdir(c->root_fd) < 0)
		return berr_set(err, errno, "chdir to the root");
	/* A library opened from here on would be the image's. */
	lazy_seal("pivot_root into the instance's root");
	if (sys_pivot_root(".", ".") < 0)
		return berr_set(err, errno, "pivot_root");
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return berr_set(err, errno, "make the old root a slave");
	if (umount2(".", MNT_DETACH) < 0)
		return berr_set(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return berr_set(err, errno, "chdir /");
	close(c->root_fd);
	c->root_fd = -1;
	if (sb->readonly_root) {
		cleanup_close int rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rfd < 0 || remount_flags(rfd, MS_RDONLY, false, "/", err) < 0 ||
		    check_readonly(rfd, "/", err) < 0)
			return rfd < 0 ? berr_set(err, errno, "open /") : -1;
	}
	return 0;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* A cgroup mount needs the instance in its cgroup, which the parent is
 * still arranging: it goes last unless something else is mounted below it. */
static bool cgroup_mount_deferred(const struct sandbox *sb, size_t i)
{
	const char *dest = sb->mounts[i].destination;
	for (size_t j = i + 1; j < sb->n_mounts; j++)
		if (path_under(sb->mounts[j].destination, dest))
			return false;
	char **lists[] = {sb->masked_paths, sb->readonly_paths, sb->device_paths};
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		for (size_t j = 0; lists[k] && lists[k][j]; j++)
			if (path_under(lists[k][j], dest))
				return false;
	return true;
}

int rootfs_setup(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	/* Nothing mounted from here on may propagate back to the host. */
	if (mount(NULL, "/", NULL, sb->root_propagation, NULL) < 0)
		return berr_set(err, errno, "make / private");
	if (mount_root(sb, c, err) < 0)
		return -1;
	bool deferred = false;
	for (size_t i = 0; i < sb->n_mounts; i++) {
		struct sb_mount *m = &sb->mounts[i];
		if (m->kind == SBM_CGROUP) {
			if (cgroup_mount_deferred(sb, i)) {
				deferred = true;
				continue;
			}
			if (sandbox_join_cgroup(sb, c, err) < 0)
				return -1;
		}
		int rc = m->kind == SBM_BIND	 ? mount_bind(sb, c->root_fd, m, err)
			 : m->kind == SBM_CGROUP ? mount_cgroups(sb, c->root_fd, m, err)
						 : mount_fs(sb, c->root_fd, m, err);
		if (rc < 0)
			return -1;
	}
	if (setup_devices(sb, c->root_fd, err) < 0 || mask_paths(sb, c->root_fd, err) < 0)
		return -1;
	for (size_t i = 0; deferred && i < sb->n_mounts; i++) {
		struct sb_mount *m = &sb->mounts[i];
		if (m->kind != SBM_CGROUP || !cgroup_mount_deferred(sb, i))
			continue;
		if (sandbox_join_cgroup(sb, c, err) < 0 ||
		    mount_cgroups(sb, c->root_fd, m, err) < 0)
			return -1;
	}
	if (sb->cwd && sb->create_cwd) {
		int fd = ensure_in_root(c->root_fd, sb->cwd, true, err);
		if (fd < 0)
			return berr_wrap(err, "working directory");
		close(fd);
	}
	if (sandbox_join_cgroup(sb, c, err) < 0)
		return -1;
	return pivot(sb, c, err);
}
