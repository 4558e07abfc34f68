/* One cgroup per instance, berth/<name>, in every hierarchy mounted under the
 * cgroup root: v1 (a hierarchy per controller or group of controllers), v2
 * (one unified hierarchy) or hybrid (both). Each controller is used where it
 * is bound: a v1 hierarchy that has it, else the unified one. The names of
 * the files that differ between v1 and v2 are all in `knobs` below. */
#include "shim/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mountinfo.h"
#include "common/names.h"
#include "shim/cgroup_internal.h"
#include "shim/shim.h"

#define MAX_HIERARCHIES 24
#define SMALL_FILE	4096 /* limits, counters, controller lists */

enum knob_id {
	K_MEMORY_MAX,
	K_MEMORY_SWAP,
	K_MEMORY_CURRENT,
	K_MEMORY_OOM,
	K_MEMORY_FAILCNT,
	K_MEMORY_MAX_USAGE,
	K_PIDS_MAX,
	K_CPU_QUOTA,
	K_CPU_PERIOD,
	K_CPU_SHARES,
	K_FREEZE,
	K_FROZEN,
	K_EVENTS,
	K_KILL,
	K_DEVICES_ALLOW,
	K_DEVICES_DENY,
	K_CPU_USAGE,
	K_PIDS_CURRENT,
};

/* Where each setting lives. A NULL file: no such file in that version; a
 * NULL v2 controller: a core file every cgroup2 directory has. */
static const struct knob {
	const char *v1_ctrl, *v1;
	const char *v2_ctrl, *v2;
} knobs[] = {
    [K_MEMORY_MAX] = {"memory", "memory.limit_in_bytes", "memory", "memory.max"},
    /* v1 limits memory+swap together, v2 swap alone. */
    [K_MEMORY_SWAP] = {"memory", "memory.memsw.limit_in_bytes", "memory", "memory.swap.max"},
    [K_MEMORY_CURRENT] = {"memory", "memory.usage_in_bytes", "memory", "memory.current"},
    /* Both hold a line "oom_kill <count>" (v1 since Linux 4.13). */
    [K_MEMORY_OOM] = {"memory", "memory.oom_control", "memory", "memory.events"},
    [K_MEMORY_FAILCNT] = {"memory", "memory.failcnt", NULL, NULL},
    [K_MEMORY_MAX_USAGE] = {"memory", "memory.max_usage_in_bytes", NULL, NULL},
    [K_PIDS_MAX] = {"pids", "pids.max", "pids", "pids.max"},
    /* v2 holds "<quota> <period>" in one file. */
    [K_CPU_QUOTA] = {"cpu", "cpu.cfs_quota_us", "cpu", "cpu.max"},
    [K_CPU_PERIOD] = {"cpu", "cpu.cfs_period_us", NULL, NULL},
    /* v2 takes a weight converted from the shares. */
    [K_CPU_SHARES] = {"cpu", "cpu.shares", "cpu", "cpu.weight"},
    [K_FREEZE] = {"freezer", "freezer.state", NULL, "cgroup.freeze"},
    [K_FROZEN] = {"freezer", "freezer.state", NULL, "cgroup.events"},
    /* "populated 0|1" and "frozen 0|1", notified through poll(). */
    [K_EVENTS] = {NULL, NULL, NULL, "cgroup.events"},
    [K_KILL] = {NULL, NULL, NULL, "cgroup.kill"},
    /* v2 has no files for devices: a BPF program decides. */
    [K_DEVICES_ALLOW] = {"devices", "devices.allow", NULL, NULL},
    [K_DEVICES_DENY] = {"devices", "devices.deny", NULL, NULL},
    /* v1: nanoseconds; v2: "usage_usec <n>" in a core file. */
    [K_CPU_USAGE] = {"cpuacct", "cpuacct.usage", NULL, "cpu.stat"},
    [K_PIDS_CURRENT] = {"pids", "pids.current", "pids", "pids.current"},
};

/* Files outside the table: the same in both versions, or in one only. */
#define PROCS_FILE	    "cgroup.procs"
#define V2_CONTROLLERS_FILE "cgroup.controllers"     /* controllers this cgroup may use */
#define V2_SUBTREE_FILE	    "cgroup.subtree_control" /* controllers its children get */
#define V1_CPUSET_CPUS_FILE "cpuset.cpus"
#define V1_CPUSET_MEMS_FILE "cpuset.mems"
/* In every v1 cgroup, not in cgroup2; a thread writing "0" moves itself. */
#define V1_TASKS_FILE "tasks"

/* Values spelled differently, indexed by v2 (0 or 1). */
static const struct {
	const char *unlimited, *freeze, *thaw;
} words[2] = {
    {"-1", "FROZEN", "THAWED"},
    {"max", "1", "0"},
};
#define DEFAULT_CPU_PERIOD 100000
#define DEFAULT_CPU_SHARES 1024
#define DEFAULT_CPU_WEIGHT 100

struct hier {
	bool v2;
	bool real;   /* a mounted cgroupfs, not a directory standing in for one */
	char *mount; /* the hierarchy's root */
	/* v1: its controllers as mounted ("cpu,cpuacct", "name=systemd");
	 * v2: the instance's cgroup.controllers ("memory pids cpu"). */
	char *ctrls;
	char *path; /* the instance cgroup */
	int fd;	    /* the instance cgroup, -1 when it is missing there */
};

struct cgroup {
	enum cgroup_layout layout;
	char name[INSTANCE_NAME_MAX + 1];
	struct hier h[MAX_HIERARCHIES];
	size_t n;
	int unified;	  /* index into h, -1 on pure v1 */
	int64_t oom_base; /* oom_kill count when the cgroup was taken over */
	int64_t failcnt_base;
};

const char *cgroup_layout_name(enum cgroup_layout layout)
{
	static const char *const names[] = {[CGROUP_LAYOUT_V1] = "v1",
					    [CGROUP_LAYOUT_V2] = "v2",
					    [CGROUP_LAYOUT_HYBRID] = "hybrid"};
	return (size_t)layout < ARRAY_SIZE(names) ? names[layout] : "unknown";
}

/* ---- small helpers ---- */

/* True when `list` (items separated by any of seps) holds item. */
static bool has_item(const char *list, const char *seps, const char *item)
{
	if (!list || !item)
		return false;
	size_t len = strlen(item);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, seps);
		if (n == len && memcmp(p, item, len) == 0)
			return true;
		p += n;
		p += strspn(p, seps);
	}
	return false;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Writes "value\n" in one write(), as `echo value >>file` would: cgroupfs
 * takes each write as one command; a stand-in directory keeps every value
 * written, one per line. */
static int write_value(int fd, const char *dirpath, const char *file, const char *value,
		       struct berr *err)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s\n", value);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return berr_set(err, E2BIG, "write %s to %s/%s", value, dirpath, file);
	ssize_t w;
	do
		w = write(fd, buf, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return berr_set(err, errno, "write %s to %s/%s", value, dirpath, file);
	if (w != n)
		return berr_set(err, EIO, "write %s to %s/%s: short write", value, dirpath, file);
	return 0;
}

static int open_for_writing(int dirfd, const char *dirpath, const char *file, const char *value,
			    struct berr *err)
{
	int fd = openat(dirfd, file, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "write %s to %s/%s", value, dirpath, file);
	return fd;
}

static int write_file_at(int dirfd, const char *dirpath, const char *file, const char *value,
			 struct berr *err)
{
	cleanup_close int fd = open_for_writing(dirfd, dirpath, file, value, err);
	if (fd < 0)
		return -1;
	return write_value(fd, dirpath, file, value, err);
}

/* Reads a small file into buf (NUL-terminated, trailing newline kept). */
static int read_file_at(int dirfd, const char *dirpath, const char *file, char *buf, size_t cap,
			struct berr *err)
{
	cleanup_close int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "read %s/%s", dirpath, file);
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return berr_set(err, errno, "read %s/%s", dirpath, file);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return 0;
}

static char *join(const char *a, const char *b)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

/* ---- processes listed in cgroup.procs ---- */

/* Appends a pid to a growing array of at most max; 1 when full. */
static int push_pid(pid_t **pids, size_t *n, size_t *cap, size_t max, long pid)
{
	if (*n == *cap) {
		if (*n == max)
			return 1;
		size_t ncap = *cap ? *cap * 2 : 64;
		pid_t *p = realloc(*pids, (ncap > max ? max : ncap) * sizeof(*p));
		if (!p)
			return -1;
		*pids = p;
		*cap = ncap > max ? max : ncap;
	}
	(*pids)[(*n)++] = (pid_t)pid;
	return 0;
}

/* Reads the pids of cgroup.procs (at most max of them), one per line. */
static int read_pids(int dirfd, const char *dirpath, pid_t **out, size_t *count, size_t max,
		     struct berr *err)
{
	*out = NULL;
	*count = 0;
	cleanup_close int fd = openat(dirfd, PROCS_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "read %s/" PROCS_FILE, dirpath);
	cleanup_free pid_t *pids = NULL;
	size_t n = 0, cap = 0;
	char buf[4096];
	long cur = -1; /* the number being read, -1 between numbers */
	int full = 0;
	while (!full) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return berr_set(err, errno, "read %s/" PROCS_FILE, dirpath);
		}
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r && !full; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
				if (cur > INT_MAX)
					return berr_set(err, ERANGE,
							"%s/" PROCS_FILE ": pid too large",
							dirpath);
			} else if (cur >= 0) {
				full = push_pid(&pids, &n, &cap, max, cur);
				cur = -1;
			}
		}
		if (full < 0)
			return berr_set(err, ENOMEM, "read %s/" PROCS_FILE, dirpath);
	}
	if (cur >= 0 && !full && push_pid(&pids, &n, &cap, max, cur) < 0)
		return berr_set(err, ENOMEM, "read %s/" PROCS_FILE, dirpath);
	*out = take_ptr(pids);
	*count = n;
	return 0;
}

static int count_pids(int dirfd, const char *dirpath, struct berr *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n;
	if (read_pids(dirfd, dirpath, &pids, &n, INT_MAX, err) < 0)
		return -1;
	return (int)n;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return x < y ? -1 : x > y;
}

#define KILL_BATCH 256

/* SIGKILLs the processes listed in one cgroup. A pid read from cgroup.procs
 * may be reused by an unrelated process before the signal is sent, so each
 * is first pinned with a pidfd and signalled only if the pid is still
 * listed after that. */
static int kill_listed(struct hier *h, struct berr *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n;
	if (read_pids(h->fd, h->path, &pids, &n, 65536, err) < 0)
		return -1;
	for (size_t start = 0; start < n; start += KILL_BATCH) {
		size_t m = n - start < KILL_BATCH ? n - start : KILL_BATCH;
		int fds[KILL_BATCH];
		bool use_pidfd = true;
		for (size_t i = 0; i < m; i++) {
#ifdef SYS_pidfd_open
			fds[i] = (int)syscall(SYS_pidfd_open, pids[start + i], 0);
			if (fds[i] < 0 && errno == ENOSYS)
				use_pidfd = false;
#else
			fds[i] = -1;
			use_pidfd = false;
#endif
		}
		if (!use_pidfd) {
			/* Kernels before 5.3: the cgroup is frozen, which keeps its
			 * processes from exiting and their pids from being reused. */
			for (size_t i = 0; i < m; i++) {
				if (fds[i] >= 0)
					close(fds[i]);
				kill(pids[start + i], SIGKILL);
			}
			continue;
		}
		cleanup_free pid_t *now = NULL;
		size_t now_n;
		int r = read_pids(h->fd, h->path, &now, &now_n, 65536, err);
		if (r == 0)
			qsort(now, now_n, sizeof(*now), cmp_pid);
		for (size_t i = 0; i < m; i++) {
			if (fds[i] < 0)
				continue;
			if (r == 0 && bsearch(&pids[start + i], now, now_n, sizeof(*now), cmp_pid))
				syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
			close(fds[i]);
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

/* ---- finding the hierarchies ---- */

struct cgmount {
	char *point;
	char *opts; /* controllers only: "cpu,cpuacct", "name=systemd" */
};

/* Mount options of a v1 cgroup mount that are not controllers. */
static bool option_is_controller(const char *o, size_t n)
{
	static const char *const not_ctrl[] = {"rw",	       "ro",
					       "none",	       "all",
					       "noprefix",     "clone_children",
					       "xattr",	       "cpuset_v2_mode",
					       "favordynmods", "nofavordynmods"};
	for (size_t i = 0; i < ARRAY_SIZE(not_ctrl); i++)
		if (strlen(not_ctrl[i]) == n && memcmp(not_ctrl[i], o, n) == 0)
			return false;
	return !(n >= 14 && memcmp(o, "release_agent=", 14) == 0);
}

/* The v1 cgroup mounts of this mount namespace, from /proc/self/mountinfo. */
static size_t read_cgroup_mounts(struct cgmount *out, size_t cap)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	size_t n = 0;
	cleanup_free char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while (n < cap && (len = getline(&line, &lcap, f)) > 0) {
		if (len > 16384)
			continue;
		line[strcspn(line, "\n")] = '\0';
		struct mountinfo_entry e;
		if (mountinfo_parse_line(line, &e) < 0 || strcmp(e.fstype, "cgroup") != 0)
			continue;
		char opts[512];
		mountinfo_filter_options(e.super_options, option_is_controller, opts, sizeof(opts));
		out[n].point = strdup(e.mount_point);
		out[n].opts = strdup(opts);
		if (!out[n].point || !out[n].opts) {
			free(out[n].point);
			free(out[n].opts);
			break;
		}
		n++;
	}
	return n;
}

static int add_hier(struct cgroup *cg, bool v2, bool real, const char *mount, const char *ctrls,
		    struct berr *err)
{
	if (v2 && cg->unified >= 0) {
		/* A second cgroup2 mount is the same hierarchy again. */
		return 0;
	}
	if (cg->n == MAX_HIERARCHIES)
		return berr_set(err, 0, "more than %d cgroup hierarchies", MAX_HIERARCHIES);
	struct hier *h = &cg->h[cg->n];
	h->v2 = v2;
	h->real = real;
	h->fd = -1;
	h->mount = strdup(mount);
	h->ctrls = strdup(ctrls ? ctrls : "");
	if (!h->mount || !h->ctrls) {
		free(h->mount);
		free(h->ctrls);
		return berr_set(err, ENOMEM, "cgroup hierarchy %s", mount);
	}
	if (v2)
		cg->unified = (int)cg->n;
	cg->n++;
	return 0;
}

static int entry_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Finds the hierarchies under fs_root: the file-system magic says what a
 * mount is; a directory that is not a cgroupfs (a test's stand-in) counts as
 * cgroup2 when it holds cgroup.controllers and as v1 when it holds `tasks`,
 * its controllers then read from its name ("cpu,cpuacct"). */
static int scan(const char *fs_root, struct cgroup *cg, struct berr *err)
{
	cg->unified = -1;
	char root[PATH_MAX];
	if (!realpath(fs_root, root))
		return berr_set(err, errno, "cgroup root %s", fs_root);
	struct statfs sfs;
	if (statfs(root, &sfs) < 0)
		return berr_set(err, errno, "statfs %s", root);
	if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
		cg->layout = CGROUP_LAYOUT_V2;
		return add_hier(cg, true, true, root, "", err);
	}
	if (sfs.f_type != CGROUP_SUPER_MAGIC) {
		char probe[PATH_MAX];
		snprintf(probe, sizeof(probe), "%s/" V2_CONTROLLERS_FILE, root);
		if (access(probe, F_OK) == 0) {
			cg->layout = CGROUP_LAYOUT_V2;
			return add_hier(cg, true, false, root, "", err);
		}
	}

	struct cgmount mounts[64];
	size_t n_mounts = 0;
	bool mounts_read = false;
	int ret = -1;
	struct dirent **ents = NULL;
	int n_ents = 0;

	if (sfs.f_type == CGROUP_SUPER_MAGIC) {
		/* A single v1 hierarchy mounted at the root itself. */
		n_mounts = read_cgroup_mounts(mounts, ARRAY_SIZE(mounts));
		const char *opts = NULL;
		for (size_t i = 0; i < n_mounts; i++)
			if (strcmp(mounts[i].point, root) == 0)
				opts = mounts[i].opts;
		if (add_hier(cg, false, true, root, opts, err) < 0)
			goto out;
		cg->layout = CGROUP_LAYOUT_V1;
		ret = 0;
		goto out;
	}

	n_ents = scandir(root, &ents, NULL, entry_cmp);
	if (n_ents < 0) {
		berr_set(err, errno, "read cgroup root %s", root);
		goto out;
	}
	size_t n_v1 = 0;
	for (int i = 0; i < n_ents; i++) {
		const char *e = ents[i]->d_name;
		if (e[0] == '.')
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s", root, e) >= (int)sizeof(path))
			continue;
		struct stat st;
		/* Symlinks ("cpu" -> "cpu,cpuacct") name a hierarchy found anyway. */
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		struct statfs s;
		if (statfs(path, &s) < 0)
			continue;
		int r = 0;
		if (s.f_type == CGROUP2_SUPER_MAGIC) {
			r = add_hier(cg, true, true, path, "", err);
		} else if (s.f_type == CGROUP_SUPER_MAGIC) {
			if (!mounts_read) {
				n_mounts = read_cgroup_mounts(mounts, ARRAY_SIZE(mounts));
				mounts_read = true;
			}
			const char *opts = e;
			for (size_t k = 0; k < n_mounts; k++)
				if (strcmp(mounts[k].point, path) == 0)
					opts = mounts[k].opts;
			r = add_hier(cg, false, true, path, opts, err);
			n_v1++;
		} else if (s.f_type == sfs.f_type) {
			/* Not a mount: a stand-in directory, known by its files. */
			char probe[PATH_MAX];
			snprintf(probe, sizeof(probe), "%s/" V2_CONTROLLERS_FILE, path);
			if (access(probe, F_OK) == 0) {
				r = add_hier(cg, true, false, path, "", err);
			} else {
				snprintf(probe, sizeof(probe), "%s/" V1_TASKS_FILE, path);
				if (access(probe, F_OK) == 0) {
					r = add_hier(cg, false, false, path, e, err);
					n_v1++;
				}
			}
		}
		if (r < 0)
			goto out;
	}
	if (cg->n == 0) {
		berr_set(err, ENOENT, "no cgroup hierarchy is mounted under %s", root);
		goto out;
	}
	cg->layout = n_v1 == 0		? CGROUP_LAYOUT_V2
		     : cg->unified >= 0 ? CGROUP_LAYOUT_HYBRID
					: CGROUP_LAYOUT_V1;
	ret = 0;
out:
	for (int i = 0; i < n_ents; i++)
		free(ents[i]);
	free(ents);
	for (size_t i = 0; i < n_mounts; i++) {
		free(mounts[i].point);
		free(mounts[i].opts);
	}
	return ret;
}

int cgroup_detect(const char *fs_root, enum cgroup_layout *out, struct berr *err)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return berr_set(err, ENOMEM, "detect cgroups");
	int r = scan(fs_root, cg, err);
	if (r == 0)
		*out = cg->layout;
	cgroup_free(cg);
	return r;
}

void cgroup_free(struct cgroup *cg)
{
	if (!cg)
		return;
	for (size_t i = 0; i < cg->n; i++) {
		if (cg->h[i].fd >= 0)
			close(cg->h[i].fd);
		free(cg->h[i].mount);
		free(cg->h[i].ctrls);
		free(cg->h[i].path);
	}
	free(cg);
}

static struct hier *unified(struct cgroup *cg)
{
	if (cg->unified < 0 || cg->h[cg->unified].fd < 0)
		return NULL;
	return &cg->h[cg->unified];
}

/* The hierarchy and file for a knob: a v1 hierarchy with the controller
 * first (on hybrid systems the controllers are bound there), else the
 * unified one when the controller is enabled for the instance. */
static struct hier *knob_at(struct cgroup *cg, enum knob_id k, const char **file)
{
	const struct knob *kb = &knobs[k];
	if (kb->v1) {
		for (size_t i = 0; i < cg->n; i++) {
			struct hier *h = &cg->h[i];
			if (!h->v2 && h->fd >= 0 && has_item(h->ctrls, ",", kb->v1_ctrl)) {
				*file = kb->v1;
				return h;
			}
		}
	}
	struct hier *u = unified(cg);
	if (kb->v2 && u && (!kb->v2_ctrl || has_item(u->ctrls, " \n", kb->v2_ctrl))) {
		*file = kb->v2;
		return u;
	}
	return NULL;
}

static const char *knob_controller(enum knob_id k)
{
	return knobs[k].v1_ctrl ? knobs[k].v1_ctrl : knobs[k].v2_ctrl;
}

static int knob_write(struct cgroup *cg, enum knob_id k, const char *value, struct berr *err)
{
	const char *file;
	struct hier *h = knob_at(cg, k, &file);
	if (!h)
		return berr_set(err, ENOTSUP, "cgroup %s/%s: no %s controller to write %s to",
				CGROUP_PARENT, cg->name, knob_controller(k), value);
	return write_file_at(h->fd, h->path, file, value, err);
}

static int knob_read(struct cgroup *cg, enum knob_id k, char *buf, size_t cap, struct berr *err)
{
	const char *file;
	struct hier *h = knob_at(cg, k, &file);
	if (!h)
		return berr_set(err, ENOTSUP, "cgroup %s/%s: no %s controller", CGROUP_PARENT,
				cg->name, knob_controller(k));
	return read_file_at(h->fd, h->path, file, buf, cap, err);
}

/* The number after "key " in a flat-keyed file (memory.events,
 * memory.oom_control), or -1. */
static int64_t keyed_value(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	}
	return -1;
}

static int64_t knob_int(struct cgroup *cg, enum knob_id k)
{
	char buf[64];
	if (knob_read(cg, k, buf, sizeof(buf), NULL) < 0)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	return v;
}

static int64_t oom_kill_count(struct cgroup *cg)
{
	char buf[SMALL_FILE];
	if (knob_read(cg, K_MEMORY_OOM, buf, sizeof(buf), NULL) < 0)
		return -1;
	return keyed_value(buf, "oom_kill");
}

/* ---- creating ---- */

/* The controllers berth enables for instances on cgroup2. */
static const char *const v2_wanted[] = {"memory", "pids", "cpu"};

/* cgroup2's "no internal processes" rule: a cgroup that holds processes
 * cannot hand controllers to its children. Processes found in one that must
 * (a cgroup root seen through a cgroup namespace) move to a leaf below it,
 * named so it can never be taken for an instance. */
static int move_procs_to_leaf(int dirfd, const char *dirpath, struct berr *err)
{
	static const char leaf[] = ".leaf";
	if (mkdirat(dirfd, leaf, 0755) < 0 && errno != EEXIST)
		return berr_set(err, errno, "mkdir %s/%s", dirpath, leaf);
	cleanup_close int lfd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0)
		return berr_set(err, errno, "open %s/%s", dirpath, leaf);
	char lpath[PATH_MAX];
	snprintf(lpath, sizeof(lpath), "%s/%s", dirpath, leaf);
	for (int round = 0; round < 10; round++) {
		cleanup_free pid_t *pids = NULL;
		size_t n;
		if (read_pids(dirfd, dirpath, &pids, &n, 65536, err) < 0)
			return -1;
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++) {
			char v[16];
			snprintf(v, sizeof(v), "%d", (int)pids[i]);
			struct berr e;
			if (write_file_at(lfd, lpath, PROCS_FILE, v, &e) < 0 && e.code != ESRCH)
				return berr_set(err, e.code, "%s", e.msg);
		}
	}
	return berr_set(err, EBUSY, "%s keeps gaining processes", dirpath);
}

/* Enables the wanted controllers for the children of one cgroup2
 * directory. A controller that cannot be enabled is left out here: a
 * limit that needs it fails later, naming it. */
static int enable_controllers(int dirfd, const char *dirpath, struct berr *err)
{
	char avail[SMALL_FILE], enabled[SMALL_FILE];
	if (read_file_at(dirfd, dirpath, V2_CONTROLLERS_FILE, avail, sizeof(avail), err) < 0 ||
	    read_file_at(dirfd, dirpath, V2_SUBTREE_FILE, enabled, sizeof(enabled), err) < 0)
		return -1;
	char want[128] = "";
	size_t len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(v2_wanted); i++) {
		const char *c = v2_wanted[i];
		if (has_item(avail, " \n", c) && !has_item(enabled, " \n", c))
			len += (size_t)snprintf(want + len, sizeof(want) - len, "%s+%s",
						len ? " " : "", c);
	}
	if (len == 0)
		return 0;
	struct berr e;
	if (write_file_at(dirfd, dirpath, V2_SUBTREE_FILE, want, &e) == 0)
		return 0;
	if (e.code == EBUSY) {
		if (move_procs_to_leaf(dirfd, dirpath, err) < 0)
			return -1;
		if (write_file_at(dirfd, dirpath, V2_SUBTREE_FILE, want, &e) == 0)
			return 0;
	}
	/* One at a time, so one refusal does not stop the others. */
	for (size_t i = 0; i < ARRAY_SIZE(v2_wanted); i++) {
		char one[32];
		const char *c = v2_wanted[i];
		if (!has_item(avail, " \n", c) || has_item(enabled, " \n", c))
			continue;
		snprintf(one, sizeof(one), "+%s", c);
		if (write_file_at(dirfd, dirpath, V2_SUBTREE_FILE, one, &e) < 0)
			log_warn("%s", e.msg);
	}
	return 0;
}

/* A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and
 * refuses processes until it has them: copy them from the parent. */
static int cpuset_inherit(int parentfd, const char *parentpath, int dirfd, const char *dirpath,
			  struct berr *err)
{
	static const char *const files[] = {V1_CPUSET_CPUS_FILE, V1_CPUSET_MEMS_FILE};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char cur[SMALL_FILE], val[SMALL_FILE];
		if (read_file_at(dirfd, dirpath, files[i], cur, sizeof(cur), err) < 0)
			return -1;
		if (cur[0] != '\0' && cur[0] != '\n')
			continue;
		if (read_file_at(parentfd, parentpath, files[i], val, sizeof(val), err) < 0)
			return -1;
		val[strcspn(val, "\n")] = '\0';
		if (write_file_at(dirfd, dirpath, files[i], val, err) < 0)
			return -1;
	}
	return 0;
}

/* Makes berth/ and berth/<name> in one hierarchy and opens the latter.
 * *existed tells that the instance cgroup was already there. */
static int prepare_hier(struct cgroup *cg, struct hier *h, bool *existed, struct berr *err)
{
	cleanup_close int rootfd = open(h->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berr_set(err, errno, "open %s", h->mount);
	cleanup_free char *ppath = join(h->mount, CGROUP_PARENT);
	h->path = ppath ? join(ppath, cg->name) : NULL;
	if (!h->path)
		return berr_set(err, ENOMEM, "cgroup %s", h->mount);
	if (mkdirat(rootfd, CGROUP_PARENT, 0755) < 0 && errno != EEXIST)
		return berr_set(err, errno, "mkdir %s", ppath);
	cleanup_close int pfd = openat(rootfd, CGROUP_PARENT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return berr_set(err, errno, "open %s", ppath);
	bool cpuset = !h->v2 && has_item(h->ctrls, ",", "cpuset");
	if (h->v2 && (enable_controllers(rootfd, h->mount, err) < 0 ||
		      enable_controllers(pfd, ppath, err) < 0))
		return -1;
	if (cpuset && cpuset_inherit(rootfd, h->mount, pfd, ppath, err) < 0)
		return -1;
	*existed = false;
	if (mkdirat(pfd, cg->name, 0755) < 0) {
		if (errno != EEXIST)
			return berr_set(err, errno, "mkdir %s", h->path);
		*existed = true;
	}
	h->fd = openat(pfd, cg->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h->fd < 0)
		return berr_set(err, errno, "open %s", h->path);
	if (cpuset && cpuset_inherit(pfd, ppath, h->fd, h->path, err) < 0)
		return -1;
	if (h->v2) {
		char ctrls[SMALL_FILE];
		if (read_file_at(h->fd, h->path, V2_CONTROLLERS_FILE, ctrls, sizeof(ctrls), err) <
		    0)
			return -1;
		free(h->ctrls);
		h->ctrls = strdup(ctrls);
		if (!h->ctrls)
			return berr_set(err, ENOMEM, "cgroup %s", h->path);
	}
	return 0;
}

/* A hierarchy the instance cannot do without: the unified one, or one
 * holding a controller berth uses. */
static bool essential(const struct hier *h)
{
	static const char *const used[] = {"memory", "pids", "cpu", "devices", "freezer"};
	if (h->v2)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(used); i++)
		if (has_item(h->ctrls, ",", used[i]))
			return true;
	return false;
}

static int check_limits(const struct cgroup_limits *l, struct berr *err)
{
	if (l->memory_swap < -1)
		return berr_set(err, EINVAL, "memory+swap limit %lld is not a size or -1",
				(long long)l->memory_swap);
	if (l->memory_swap != 0 && l->memory <= 0)
		return berr_set(err, EINVAL, "a memory+swap limit needs a memory limit");
	if (l->memory_swap > 0 && l->memory_swap < l->memory)
		return berr_set(err, EINVAL,
				"memory+swap limit %lld is below the memory limit %lld",
				(long long)l->memory_swap, (long long)l->memory);
	if (l->devices && !l->allow_all_devices)
		for (size_t i = 0; i < l->n_devices; i++)
			if (cgroup_device_check(&l->devices[i], err) < 0)
				return -1;
	return 0;
}

/* True when the memory knob's hierarchy has the swap file (v1 needs swap
 * accounting, v2 a kernel with swap support). */
static bool has_swap_file(struct cgroup *cg)
{
	const char *file, *swap;
	struct hier *h = knob_at(cg, K_MEMORY_MAX, &file);
	if (!h || !knob_at(cg, K_MEMORY_SWAP, &swap))
		return false;
	return faccessat(h->fd, swap, F_OK, 0) == 0;
}

static int set_memory(struct cgroup *cg, const struct cgroup_limits *l, bool reset,
		      struct berr *err)
{
	const char *file;
	struct hier *h = knob_at(cg, K_MEMORY_MAX, &file);
	if (l->memory <= 0 && !reset)
		return 0;
	char mem[32], swap[32] = "";
	snprintf(mem, sizeof(mem), "%lld", (long long)l->memory);
	if (!h)
		return l->memory > 0 ? knob_write(cg, K_MEMORY_MAX, mem, err) : 0;
	const char *unl = words[h->v2].unlimited;
	if (l->memory <= 0)
		snprintf(mem, sizeof(mem), "%s", unl);
	/* v1: memory+swap; v2: swap alone. Unset swap: as much swap again as
	 * memory is not assumed; the swap limit stays unlimited. */
	if (l->memory_swap == -1 || (l->memory_swap == 0 && reset))
		snprintf(swap, sizeof(swap), "%s", unl);
	else if (l->memory_swap > 0)
		snprintf(swap, sizeof(swap), "%lld",
			 (long long)(h->v2 ? l->memory_swap - l->memory : l->memory_swap));
	bool swap_ok = has_swap_file(cg);
	if (swap[0] && !swap_ok && l->memory_swap > 0)
		log_warn("cgroup %s/%s: no swap accounting in this kernel; swap is not limited",
			 CGROUP_PARENT, cg->name);
	if (!swap[0] || !swap_ok)
		return knob_write(cg, K_MEMORY_MAX, mem, err);
	if (h->v2)
		return knob_write(cg, K_MEMORY_MAX, mem, err) < 0 ||
			       knob_write(cg, K_MEMORY_SWAP, swap, err) < 0
			   ? -1
			   : 0;
	/* v1 keeps memory <= memory+swap at every step: when raising the memory
	 * limit above the current memory+swap one, that one must go first. */
	struct berr e;
	if (knob_write(cg, K_MEMORY_MAX, mem, &e) < 0) {
		if (e.code != EINVAL) {
			if (err)
				*err = e;
			return -1;
		}
		if (knob_write(cg, K_MEMORY_SWAP, swap, err) < 0 ||
		    knob_write(cg, K_MEMORY_MAX, mem, err) < 0)
			return -1;
		return 0;
	}
	return knob_write(cg, K_MEMORY_SWAP, swap, err);
}

static int set_cpu(struct cgroup *cg, const struct cgroup_limits *l, bool reset, struct berr *err)
{
	const char *file;
	struct hier *h = knob_at(cg, K_CPU_QUOTA, &file);
	bool want_quota = l->cpu_quota_us > 0 || l->cpu_period_us > 0;
	char v[64];
	if (want_quota || (reset && h)) {
		if (h && h->v2) {
			long long period =
			    l->cpu_period_us > 0 ? l->cpu_period_us : DEFAULT_CPU_PERIOD;
			if (l->cpu_quota_us > 0)
				snprintf(v, sizeof(v), "%lld %lld", (long long)l->cpu_quota_us,
					 period);
			else
				snprintf(v, sizeof(v), "max %lld", period);
			if (knob_write(cg, K_CPU_QUOTA, v, err) < 0)
				return -1;
		} else {
			/* The period first: a quota is checked against it. */
			snprintf(v, sizeof(v), "%lld",
				 (long long)(l->cpu_period_us > 0 ? l->cpu_period_us
								  : DEFAULT_CPU_PERIOD));
			if ((l->cpu_period_us > 0 || reset) &&
			    knob_write(cg, K_CPU_PERIOD, v, err) < 0)
				return -1;
			snprintf(v, sizeof(v), "%lld",
				 (long long)(l->cpu_quota_us > 0 ? l->cpu_quota_us : -1));
			if ((l->cpu_quota_us > 0 || reset) &&
			    knob_write(cg, K_CPU_QUOTA, v, err) < 0)
				return -1;
		}
	}
	h = knob_at(cg, K_CPU_SHARES, &file);
	if (l->cpu_shares > 0 || (reset && h)) {
		if (h && h->v2)
			snprintf(v, sizeof(v), "%llu",
				 (unsigned long long)(l->cpu_shares > 0
							  ? cgroup_shares_to_weight(l->cpu_shares)
							  : DEFAULT_CPU_WEIGHT));
		else
			snprintf(
			    v, sizeof(v), "%lld",
			    (long long)(l->cpu_shares > 0 ? l->cpu_shares : DEFAULT_CPU_SHARES));
		if (knob_write(cg, K_CPU_SHARES, v, err) < 0)
			return -1;
	}
	return 0;
}

uint64_t cgroup_shares_to_weight(int64_t shares)
{
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((uint64_t)(shares - 2) * 9999) / 262142;
}

static int set_pids(struct cgroup *cg, const struct cgroup_limits *l, bool reset, struct berr *err)
{
	const char *file;
	struct hier *h = knob_at(cg, K_PIDS_MAX, &file);
	if (l->pids_limit > 0) {
		char v[32];
		snprintf(v, sizeof(v), "%lld", (long long)l->pids_limit);
		return knob_write(cg, K_PIDS_MAX, v, err);
	}
	if (reset && h)
		return knob_write(cg, K_PIDS_MAX, "max", err); /* "max" in v1 too */
	return 0;
}

static int set_devices(struct cgroup *cg, const struct cgroup_limits *l, bool existed,
		       struct berr *err)
{
	const struct cgroup_device *rules = l->devices;
	size_t n = l->n_devices;
	if (!rules || n == 0) {
		rules = cgroup_default_devices;
		n = cgroup_default_devices_count;
	}
	const char *allow_file, *deny_file;
	struct hier *h = knob_at(cg, K_DEVICES_ALLOW, &allow_file);
	if (h) {
		knob_at(cg, K_DEVICES_DENY, &deny_file);
		if (l->allow_all_devices)
			return write_file_at(h->fd, h->path, allow_file, "a", err);
		/* Each rule is one write() on files opened once. */
		cleanup_close int deny = open_for_writing(h->fd, h->path, deny_file, "a", err);
		if (deny < 0 || write_value(deny, h->path, deny_file, "a", err) < 0)
			return -1;
		cleanup_close int allow = -1;
		for (size_t i = 0; i < n; i++) {
			/* v1 takes "a" as everything whatever follows: a rule for
			 * all types is written once per type to keep its numbers
			 * and access. */
			struct cgroup_device d = rules[i];
			for (int pass = 0; pass < (rules[i].type == 'a' ? 2 : 1); pass++) {
				if (rules[i].type == 'a')
					d.type = pass ? 'b' : 'c';
				char line[64];
				if (cgroup_device_v1_line(&d, line, sizeof(line)) < 0)
					return berr_set(err, EINVAL, "device rule %zu", i);
				if (d.allow && allow < 0 &&
				    (allow = open_for_writing(h->fd, h->path, allow_file, line,
							      err)) < 0)
					return -1;
				if (write_value(d.allow ? allow : deny, h->path,
						d.allow ? allow_file : deny_file, line, err) < 0)
					return -1;
			}
		}
		return 0;
	}
	struct hier *u = unified(cg);
	if (!u) {
		if (l->allow_all_devices)
			return 0;
		return berr_set(err, ENOTSUP,
				"cgroup %s/%s: no devices controller and no cgroup2 "
				"hierarchy to limit devices with",
				CGROUP_PARENT, cg->name);
	}
	if (l->allow_all_devices) {
		/* Nothing can be attached to a stand-in directory. */
		if (existed && u->real)
			return cgroup_devices_detach_all(u->fd, u->path, err);
		return 0;
	}
	if (!u->real)
		return berr_set(err, ENOTSUP, "device rules for %s: not a cgroup2 file system",
				u->path);
	return cgroup_devices_attach(u->fd, u->path, rules, n, err);
}

static void remove_dirs(struct cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg->h[i].path)
			rmdir(cg->h[i].path);
}

/* With `fresh`, a cgroup left by an instance whose shim died is emptied and
 * removed (1 is returned: create it again) when it can be. */
static int create(const char *fs_root, const char *name, size_t nlen, const struct cgroup_limits *l,
		  bool fresh, struct cgroup **out, struct berr *err)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return berr_set(err, ENOMEM, "cgroup %s/%s", CGROUP_PARENT, name);
	memcpy(cg->name, name, nlen + 1);
	if (scan(fs_root, cg, err) < 0)
		goto fail;
	bool existed = false;
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		bool e = false;
		struct berr perr;
		if (prepare_hier(cg, h, &e, &perr) < 0) {
			if (essential(h)) {
				if (err)
					*err = perr;
				goto fail_remove;
			}
			/* Membership alone (blkio, net_cls, a named hierarchy):
			 * not worth failing the instance for. */
			log_warn("%s; the instance stays out of that hierarchy", perr.msg);
			if (h->fd >= 0)
				close(h->fd);
			h->fd = -1;
			if (h->path)
				rmdir(h->path);
			free(h->path);
			h->path = NULL;
			continue;
		}
		existed |= e;
	}
	if (existed) {
		/* Left by an instance whose shim died: nothing of it may run on. */
		log_warn("cgroup %s/%s exists already; killing what is left in it", CGROUP_PARENT,
			 name);
		if (cgroup_kill_all(cg, err) < 0)
			goto fail;
		/* Made anew rather than reused: a process cloned into a cgroup
		 * that cgroup.kill was written to is killed at once on some
		 * kernels (Linux 6.18), and its counters (OOM kills) restart.
		 * A directory that cannot be removed (a nested cgroup in it) is
		 * reused by the second pass. */
		bool removed = false;
		for (size_t i = 0; fresh && i < cg->n; i++)
			if (cg->h[i].path && rmdir(cg->h[i].path) == 0)
				removed = true;
		if (removed) {
			cgroup_free(cg);
			return 1;
		}
	}
	if (set_memory(cg, l, existed, err) < 0 || set_pids(cg, l, existed, err) < 0 ||
	    set_cpu(cg, l, existed, err) < 0 || set_devices(cg, l, existed, err) < 0)
		goto fail_remove;
	cg->oom_base = oom_kill_count(cg);
	if (cg->oom_base < 0)
		cg->oom_base = 0;
	cg->failcnt_base = knob_int(cg, K_MEMORY_FAILCNT);
	*out = cg;
	return 0;
fail_remove:
	if (cgroup_count_procs(cg) == 0)
		remove_dirs(cg);
fail:
	cgroup_free(cg);
	return -1;
}

int cgroup_create(const char *fs_root, const char *name, const struct cgroup_limits *limits,
		  struct cgroup **out, struct berr *err)
{
	static const struct cgroup_limits none = {0};
	const struct cgroup_limits *l = limits ? limits : &none;
	size_t nlen = strlen(name);
	if (!name_valid(name, nlen, INSTANCE_NAME_MAX))
		return berr_set(err, EINVAL, "cgroup for instance \"%.64s\": not a valid name",
				name);
	if (check_limits(l, err) < 0)
		return berr_wrap(err, "cgroup %s/%s", CGROUP_PARENT, name);
	int rc = create(fs_root, name, nlen, l, true, out, err);
	return rc == 1 ? create(fs_root, name, nlen, l, false, out, err) : rc;
}

int cgroup_open(const char *fs_root, const char *name, struct cgroup **out, struct berr *err)
{
	size_t nlen = strlen(name);
	if (!name_valid(name, nlen, INSTANCE_NAME_MAX))
		return berr_set(err, EINVAL, "cgroup for instance \"%.64s\": not a valid name",
				name);
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return berr_set(err, ENOMEM, "cgroup %s/%s", CGROUP_PARENT, name);
	memcpy(cg->name, name, nlen + 1);
	if (scan(fs_root, cg, err) < 0) {
		cgroup_free(cg);
		return -1;
	}
	size_t found = 0;
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		if (asprintf(&h->path, "%s/%s/%s", h->mount, CGROUP_PARENT, name) < 0) {
			h->path = NULL;
			cgroup_free(cg);
			return berr_set(err, ENOMEM, "cgroup %s/%s", CGROUP_PARENT, name);
		}
		/* A crash during create can leave the cgroup in some hierarchies only. */
		h->fd = open(h->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (h->fd < 0) {
			if (errno != ENOENT) {
				berr_set(err, errno, "open %s", h->path);
				cgroup_free(cg);
				return -1;
			}
			continue;
		}
		found++;
		if (h->v2) {
			char ctrls[SMALL_FILE] = "";
			read_file_at(h->fd, h->path, V2_CONTROLLERS_FILE, ctrls, sizeof(ctrls),
				     NULL);
			free(h->ctrls);
			h->ctrls = strdup(ctrls);
		}
	}
	if (!found) {
		cgroup_free(cg);
		return berr_set(err, ENOENT, "no cgroup %s/%s under %s", CGROUP_PARENT, name,
				fs_root);
	}
	cg->oom_base = 0;
	cg->failcnt_base = 0;
	*out = cg;
	return 0;
}

int cgroup_add_pid(struct cgroup *cg, pid_t pid, struct berr *err)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		if (h->fd >= 0 && write_file_at(h->fd, h->path, PROCS_FILE, v, err) < 0)
			return -1;
	}
	return 0;
}

int cgroup_join_self(struct cgroup *cg, struct berr *err)
{
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		if (!h->v2 && h->fd >= 0 &&
		    write_file_at(h->fd, h->path, V1_TASKS_FILE, "0", err) < 0)
			return -1;
	}
	return 0;
}

int cgroup_unified_fd(struct cgroup *cg)
{
	struct hier *u = unified(cg);
	return u ? u->fd : -1;
}

/* The most processes any hierarchy lists for the instance: on hybrid
 * systems a process may be in a v1 cgroup and not (yet) the unified one. */
static int count_all(struct cgroup *cg, struct berr *err)
{
	int most = 0;
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		if (h->fd < 0)
			continue;
		int c = count_pids(h->fd, h->path, err);
		if (c < 0)
			return -1;
		if (c > most)
			most = c;
	}
	return most;
}

int cgroup_count_procs(struct cgroup *cg)
{
	return count_all(cg, NULL);
}

/* Waits until the cgroup holds no process, at most ms milliseconds. A
 * cgroup2 cgroup.events file wakes poll() when "populated" changes, but
 * the kernel spaces those wake-ups 10 ms apart, so the list is also read
 * again at growing intervals (and only so on v1). */
static bool wait_empty(struct cgroup *cg, long ms)
{
	struct hier *u = unified(cg);
	cleanup_close int ev =
	    u && u->real ? openat(u->fd, knobs[K_EVENTS].v2, O_RDONLY | O_CLOEXEC) : -1;
	int64_t deadline = mono_ms() + ms;
	long step_us = 100;
	for (;;) {
		if (cgroup_count_procs(cg) == 0)
			return true;
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return false;
		long us = left * 1000 < step_us ? left * 1000 : step_us;
		struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
		struct pollfd p = {.fd = ev, .events = POLLPRI};
		ppoll(&p, ev >= 0 ? 1 : 0, &ts, NULL);
		if (ev >= 0 && p.revents) {
			/* Reading re-arms the notification. */
			char buf[SMALL_FILE];
			if (pread(ev, buf, sizeof(buf), 0) < 0) {
				close(ev);
				ev = -1;
			}
		}
		if (step_us < 20000)
			step_us *= 2;
	}
}

/* Freezes (or thaws) the instance; returns 0 once the kernel reports it
 * frozen, -1 where there is no freezer or it did not settle in time. */
static int set_frozen(struct cgroup *cg, bool freeze)
{
	const char *file;
	struct hier *h = knob_at(cg, K_FREEZE, &file);
	if (!h || faccessat(h->fd, file, F_OK, 0) < 0)
		return -1;
	if (knob_write(cg, K_FREEZE, freeze ? words[h->v2].freeze : words[h->v2].thaw, NULL) < 0)
		return -1;
	if (!freeze)
		return 0;
	for (int i = 0; i < 100; i++) {
		char buf[SMALL_FILE];
		if (knob_read(cg, K_FROZEN, buf, sizeof(buf), NULL) < 0)
			return -1;
		if (h->v2 ? keyed_value(buf, "frozen") == 1
			  : strncmp(buf, words[0].freeze, strlen(words[0].freeze)) == 0)
			return 0;
		sleep_ms(5);
	}
	return -1;
}

#define KILL_ROUNDS 40

static bool kill_file_disabled;

void cgroup_disable_kill_file(void)
{
	kill_file_disabled = true;
}

int cgroup_kill_all(struct cgroup *cg, struct berr *err)
{
	struct hier *u = unified(cg);
	if (u && !kill_file_disabled && faccessat(u->fd, knobs[K_KILL].v2, F_OK, 0) == 0) {
		if (write_file_at(u->fd, u->path, knobs[K_KILL].v2, "1", err) < 0)
			return -1;
		if (wait_empty(cg, 2000))
			return 0;
	}
	/* Freezing stops forks between reading the list and the signals. */
	for (int round = 0; round < KILL_ROUNDS; round++) {
		int n = count_all(cg, err);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		set_frozen(cg, true);
		int r = 0;
		for (size_t i = 0; i < cg->n && r == 0; i++)
			if (cg->h[i].fd >= 0)
				r = kill_listed(&cg->h[i], err);
		/* Thawed even when freezing did not settle: the kill needs it. */
		set_frozen(cg, false);
		if (r < 0)
			return -1;
		wait_empty(cg, 10 + 10L * round);
	}
	int left = count_all(cg, err);
	if (left <= 0)
		return left;
	return berr_set(err, EBUSY, "cgroup %s/%s: %d processes left after SIGKILL", CGROUP_PARENT,
			cg->name, left);
}

/* Linux before 4.13 has no oom_kill counter on v1: there the limit having
 * been hit (failcnt grew and the peak reached the limit) is taken as the OOM
 * killer's work. The shim asks only when the process died of SIGKILL. */
bool cgroup_oom_killed(struct cgroup *cg)
{
	int64_t c = oom_kill_count(cg);
	if (c >= 0)
		return c > cg->oom_base;
	int64_t failcnt = knob_int(cg, K_MEMORY_FAILCNT);
	int64_t peak = knob_int(cg, K_MEMORY_MAX_USAGE);
	int64_t limit = knob_int(cg, K_MEMORY_MAX);
	return failcnt > cg->failcnt_base && limit > 0 && peak >= 0 &&
	       peak + (int64_t)sysconf(_SC_PAGESIZE) >= limit;
}

int64_t cgroup_memory_current(struct cgroup *cg)
{
	return knob_int(cg, K_MEMORY_CURRENT);
}

void cgroup_usage(struct cgroup *cg, struct cgroup_usage *u)
{
	u->memory_bytes = knob_int(cg, K_MEMORY_CURRENT);
	u->pids = knob_int(cg, K_PIDS_CURRENT);
	u->cpu_ns = -1;
	const char *file;
	struct hier *h = knob_at(cg, K_CPU_USAGE, &file);
	char buf[SMALL_FILE];
	if (h && !h->v2) {
		u->cpu_ns = knob_int(cg, K_CPU_USAGE);
	} else if (h && knob_read(cg, K_CPU_USAGE, buf, sizeof(buf), NULL) == 0) {
		int64_t us = keyed_value(buf, "usage_usec");
		u->cpu_ns = us >= 0 ? us * 1000 : -1;
	}
}

int cgroup_destroy(struct cgroup *cg, struct berr *err)
{
	int ret = 0;
	for (size_t i = 0; i < cg->n; i++) {
		struct hier *h = &cg->h[i];
		if (!h->path)
			continue;
		/* A process that just died can keep the cgroup busy until its
		 * parent has reaped it. */
		int r;
		for (int tries = 0; (r = rmdir(h->path)) < 0 && errno == EBUSY && tries < 100;
		     tries++)
			sleep_ms(10);
		if (r < 0 && errno != ENOENT && ret == 0)
			ret = berr_set(err, errno, "remove cgroup %s", h->path);
	}
	return ret;
}
