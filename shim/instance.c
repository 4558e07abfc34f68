/* The per-instance directory (see shim.h) and the sandbox an instance_spec
 * describes: the defaults of container engines (mounts, masked paths,
 * capabilities, seccomp) plus what the spec asks for. */
#include "shim/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strv.h"

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const default_masked[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    NULL,
};

static const char *const default_readonly[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

int instance_dir_path(const char *root, const char *name, char *buf, size_t len, struct berr *err)
{
	if (!instance_name_valid(name))
		return berr_set(err, 0, "instance name \"%s\" is invalid", name ? name : "");
	if (snprintf(buf, len, "%s/instances/%s", root, name) >= (int)len)
		return berr_set(err, ENAMETOOLONG, "instance %s: directory path", name);
	return 0;
}

static int lock_once(const char *dir, const char *name, bool create, bool reuse, bool *again,
		     struct berr *err)
{
	bool made = false;
	if (create) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		if (fs_mkdir_p(parent, 0700, err) < 0)
			return berr_wrap(err, "instance %s", name);
		if (mkdir(dir, 0700) == 0) {
			made = true;
		} else {
			if (errno != EEXIST)
				return berr_set(err, errno, "instance %s: mkdir %s", name, dir);
			if (!reuse) {
				/* Tell a running instance from a stopped one. */
				int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				bool running = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;
				if (fd >= 0)
					close(fd);
				if (running)
					return berr_set(err, EBUSY, "instance %s is running", name);
				return berr_set(
				    err, EEXIST,
				    "instance %s already exists (stopped; its directory "
				    "is %s)",
				    name, dir);
			}
		}
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* Reclaimed (shim_reclaim) between the mkdir and here. */
		*again = made && errno == ENOENT;
		return berr_set(err, errno, "instance %s: open %s", name, dir);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return berr_set(err, EBUSY, "instance %s is running", name);
		return berr_set(err, e, "instance %s: lock %s", name, dir);
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return berr_set(err, e, "instance %s: stat %s", name, dir);
	}
	if (st.st_nlink == 0) {
		/* Locked, but removed by whoever held the lock before. */
		close(fd);
		*again = create;
		return berr_set(err, ENOENT, "instance %s: %s was removed meanwhile", name, dir);
	}
	return fd;
}

int instance_lock(const char *dir, const char *name, bool create, bool reuse, struct berr *err)
{
	for (int tries = 0;; tries++) {
		bool again = false;
		int fd = lock_once(dir, name, create, reuse, &again, err);
		if (fd >= 0 || !again || tries == 3)
			return fd;
	}
}

static int write_file_at(int dfd, const char *name, const char *data, size_t len, struct berr *err)
{
	cleanup_close int fd =
	    openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return berr_set(err, errno, "create %s", name);
	while (len) {
		ssize_t w = write(fd, data, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return berr_set(err, errno, "write %s", name);
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static const char *const etc_names[] = {"hostname", "hosts", "resolv.conf"};

static const char *spec_hostname(const struct instance_spec *spec, char buf[65])
{
	if (spec->hostname)
		return spec->hostname;
	/* Instance names may hold '_', which hostnames may not. */
	size_t i = 0;
	for (; spec->name[i] && i < 64; i++)
		buf[i] = spec->name[i] == '_' ? '-' : spec->name[i];
	buf[i] = '\0';
	return buf;
}

static uint32_t userns_base(const struct instance_spec *spec)
{
	return spec->userns_base > 0 ? (uint32_t)spec->userns_base : INSTANCE_USERNS_BASE;
}

int instance_files_prepare(const char *dir, const struct instance_spec *spec, struct berr *err)
{
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, errno, "open %s", dir);
	static const char *const dirs[] = {"upper", "work", "rootfs"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (!spec->layer_dirs && i < 2)
			continue;
		if (mkdirat(dfd, dirs[i], 0755) < 0 && errno != EEXIST)
			return berr_set(err, errno, "mkdir %s/%s", dir, dirs[i]);
	}
	if (spec->userns && spec->layer_dirs) {
		/* The root directory of the instance belongs to its root. */
		uint32_t base = userns_base(spec);
		if (fchownat(dfd, "upper", base, base, AT_SYMLINK_NOFOLLOW) < 0)
			return berr_set(err, errno, "chown %s/upper", dir);
	}
	char hbuf[65];
	char *etc[3] = {0};
	if (etc_files_contents(spec, spec_hostname(spec, hbuf), etc, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < 3 && rc == 0; i++)
		rc = write_file_at(dfd, etc_names[i], etc[i], strlen(etc[i]), err);
	for (size_t i = 0; i < 3; i++)
		free(etc[i]);
	return rc;
}

static int add_default_mounts(struct sandbox *sb, const struct instance_spec *spec, const char *dir,
			      bool ephemeral, struct berr *err)
{
	const unsigned long nsd = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (sandbox_add_mount(sb, SBM_FS, "proc", "proc", "/proc", nsd, NULL, err) < 0 ||
	    sandbox_add_mount(sb, SBM_FS, "tmpfs", "tmpfs", "/dev", MS_NOSUID | MS_STRICTATIME,
			      "mode=755,size=65536k", err) < 0 ||
	    sandbox_add_mount(sb, SBM_FS, "devpts", "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
			      "newinstance,ptmxmode=0666,mode=0620,gid=5", err) < 0 ||
	    sandbox_add_mount(sb, SBM_FS, "tmpfs", "shm", "/dev/shm", nsd, "mode=1777,size=65536k",
			      err) < 0 ||
	    sandbox_add_mount(sb, SBM_FS, "mqueue", "mqueue", "/dev/mqueue", nsd, NULL, err) < 0 ||
	    sandbox_add_mount(sb, SBM_FS, "sysfs", "sysfs", "/sys",
			      nsd | (spec->privileged ? 0 : MS_RDONLY), NULL, err) < 0 ||
	    sandbox_add_mount(sb, SBM_CGROUP, "cgroup", "cgroup", "/sys/fs/cgroup",
			      nsd | (spec->privileged ? 0 : MS_RDONLY), NULL, err) < 0)
		return -1;
	char *etc[3] = {0};
	if (ephemeral && etc_files_contents(spec, sb->hostname, etc, err) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(etc_names); i++) {
		char src[PATH_MAX], dst[64];
		snprintf(src, sizeof(src), "%s/%s", dir, etc_names[i]);
		snprintf(dst, sizeof(dst), "/etc/%s", etc_names[i]);
		if (sandbox_add_mount(sb, SBM_BIND, NULL, src, dst,
				      spec->readonly_rootfs ? MS_RDONLY : 0, NULL, err) < 0) {
			for (size_t k = i; k < 3; k++)
				free(etc[k]);
			return -1;
		}
		/* Ephemeral: the instance writes them into its own tmpfs. */
		sb->mounts[sb->n_mounts - 1].content = etc[i];
	}
	for (size_t i = 0; i < spec->n_binds; i++) {
		const struct bind_mount *b = &spec->binds[i];
		if (sandbox_add_mount(sb, SBM_BIND, NULL, b->source, b->destination,
				      b->readonly ? MS_RDONLY : 0, NULL, err) < 0)
			return -1;
		sb->mounts[sb->n_mounts - 1].recursive = true;
	}
	return 0;
}

static int add_devices(struct sandbox *sb, const struct instance_spec *spec, struct berr *err)
{
	if (spec->privileged) {
		sb->limits.allow_all_devices = true;
	} else if (spec->n_devices) {
		size_t n = cgroup_default_devices_count + spec->n_devices;
		sb->devices = calloc(n, sizeof(*sb->devices));
		if (!sb->devices)
			return berr_set(err, ENOMEM, "devices");
		memcpy(sb->devices, cgroup_default_devices,
		       cgroup_default_devices_count * sizeof(*sb->devices));
		sb->limits.devices = sb->devices;
		sb->limits.n_devices = n;
	}
	for (size_t i = 0; i < spec->n_devices; i++) {
		const struct device_rule *d = &spec->devices[i];
		struct stat st;
		if (stat(d->path, &st) < 0)
			return berr_set(err, errno, "device %s", d->path);
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			return berr_set(err, 0, "device %s is not a device node", d->path);
		if (!spec->privileged) {
			struct cgroup_device *r = &sb->devices[cgroup_default_devices_count + i];
			r->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
			r->major = major(st.st_rdev);
			r->minor = minor(st.st_rdev);
			snprintf(r->access, sizeof(r->access), "%s",
				 d->permissions ? d->permissions : "rwm");
			r->allow = true;
		}
		if (strv_push(&sb->device_hosts, d->path) < 0 ||
		    strv_push(&sb->device_paths, d->path_in ? d->path_in : d->path) < 0)
			return berr_set(err, ENOMEM, "device %s", d->path);
	}
	return 0;
}

static int build(struct sandbox *sb, const struct instance_spec *spec, const char *dir,
		 bool ephemeral, struct berr *err)
{
	bool ok = true;
	char buf[PATH_MAX];
	sb->name = strdup(spec->name);
	sb->instance_dir = strdup(dir);
	if (!sb->name || !sb->instance_dir)
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	if (spec->layer_dirs) {
		sb->layer_dirs = strv_dup(spec->layer_dirs, &ok);
		snprintf(buf, sizeof(buf), "%s/upper", dir);
		sb->upper_dir = strdup(buf);
		snprintf(buf, sizeof(buf), "%s/work", dir);
		sb->work_dir = strdup(buf);
		snprintf(buf, sizeof(buf), "%s/rootfs", dir);
		sb->mountpoint = strdup(buf);
		if (!ok || !sb->upper_dir || !sb->work_dir || !sb->mountpoint)
			return berr_set(err, ENOMEM, "instance %s", spec->name);
	} else {
		sb->rootfs_dir = strdup(spec->rootfs);
		sb->mountpoint = strdup(spec->rootfs);
		if (!sb->rootfs_dir || !sb->mountpoint)
			return berr_set(err, ENOMEM, "instance %s", spec->name);
	}
	sb->readonly_root = spec->readonly_rootfs;
	sb->clone_flags =
	    CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
	if (spec->network == NET_NONE)
		sb->clone_flags |= CLONE_NEWNET;
	if (spec->network == NET_JOIN && !(sb->netns_path = strdup(spec->netns)))
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	if (spec->userns) {
		uint32_t base = userns_base(spec);
		sb->clone_flags |= CLONE_NEWUSER;
		sb->uid_map[0] = (struct sb_idmap){0, base, INSTANCE_USERNS_SIZE};
		sb->gid_map[0] = (struct sb_idmap){0, base, INSTANCE_USERNS_SIZE};
		sb->n_uid_map = sb->n_gid_map = 1;
	}
	char hbuf[65];
	sb->hostname = strdup(spec_hostname(spec, hbuf));
	if (!sb->hostname)
		return berr_set(err, ENOMEM, "instance %s", spec->name);

	sb->ephemeral = ephemeral && spec->layer_dirs && !spec->userns;
	if (add_default_mounts(sb, spec, dir, sb->ephemeral, err) < 0 ||
	    add_devices(sb, spec, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	sb->default_devices = true;
	if (!spec->privileged) {
		sb->masked_paths = strv_dup((char *const *)default_masked, &ok);
		sb->readonly_paths = strv_dup((char *const *)default_readonly, &ok);
	}

	sb->args = strv_dup(spec->args, &ok);
	sb->env = strv_dup(spec->env, &ok);
	if (!ok)
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	if (!strv_env_get(sb->env, "PATH") && strv_env_set(&sb->env, DEFAULT_PATH_ENV) < 0)
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	snprintf(buf, sizeof(buf), "HOSTNAME=%s", sb->hostname);
	if (!strv_env_get(sb->env, "HOSTNAME") && strv_env_set(&sb->env, buf) < 0)
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	if (spec->cwd && !(sb->cwd = strdup(spec->cwd)))
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	sb->create_cwd = true;
	if (spec->user && !(sb->user = strdup(spec->user)))
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	sb->set_home = true;

	if (caps_default_sets((const char *const *)spec->cap_add,
			      (const char *const *)spec->cap_drop, spec->privileged, &sb->caps,
			      err) < 0)
		return berr_wrap(err, "instance %s: capabilities", spec->name);
	sb->no_new_privs = true;
	sb->seccomp = spec->privileged ? SB_SECCOMP_NONE : SB_SECCOMP_DEFAULT;
	sb->seccomp_caps = sb->caps.effective;

	sb->limits.memory = spec->memory;
	sb->limits.memory_swap = spec->memory_swap;
	sb->limits.pids_limit = spec->pids_limit;
	sb->limits.cpu_quota_us = spec->cpu_quota_us;
	sb->limits.cpu_period_us = spec->cpu_period_us;
	sb->limits.cpu_shares = spec->cpu_shares;
	return 0;
}

int sandbox_from_spec(const struct instance_spec *spec, const char *instance_dir, bool ephemeral,
		      struct sandbox **out, struct berr *err)
{
	*out = NULL;
	if (instance_spec_validate(spec, err) < 0)
		return -1;
	struct sandbox *sb = sandbox_new();
	if (!sb)
		return berr_set(err, ENOMEM, "instance %s", spec->name);
	if (build(sb, spec, instance_dir, ephemeral, err) < 0) {
		sandbox_free(sb);
		return -1;
	}
	*out = sb;
	return 0;
}

int instance_remove_files(const char *root, const char *name, struct berr *err)
{
	char dir[PATH_MAX];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	return fs_remove_tree(dir, err) < 0 ? berr_wrap(err, "instance %s", name) : 0;
}
