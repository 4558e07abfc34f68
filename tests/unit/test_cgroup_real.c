/* shim/cgroup against the kernel, as root: v1 (and hybrid) under
 * /sys/fs/cgroup, a v1-only view made of bind mounts of the v1 hierarchies,
 * and the cgroup2 hierarchy at /sys/fs/cgroup/unified used as a v2 root
 * (membership, cgroup.kill, clone3 into the cgroup, the device program).
 * Every cgroup is named berth/bt<pid>-<n> and removed in the teardown, even
 * when the test failed; mounts live in this process's own mount namespace.
 *
 * All but the first test need that hybrid layout (v1 controllers, cgroup2
 * at /sys/fs/cgroup/unified); on a host with another layout (a stock
 * Debian 12 has cgroup2 alone) they are skipped, saying so. The first test,
 * detection against the mounts, runs everywhere. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "shim/cgroup.h"
#include "shim/cgroup_internal.h"

#define ROOT	 "/sys/fs/cgroup"
#define UNIFIED	 "/sys/fs/cgroup/unified"
#define MAX_KIDS 8

struct fx {
	char name[64];
	struct cgroup *cg;
	pid_t kids[MAX_KIDS];
	int n_kids;
	char tmp[64]; /* scratch directory: device nodes, the v1 view */
	bool v1_view;
};

static int counter;

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "bt%d-%d", (int)getpid(), ++counter);
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/berth-cgreal-XXXXXX");
	if (!mkdtemp(f->tmp))
		return -1;
	*state = f;
	return 0;
}

/* Removes berth/<name> from every hierarchy, whatever the test left. */
static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < f->n_kids; i++) {
		kill(f->kids[i], SIGKILL);
		waitpid(f->kids[i], NULL, 0);
	}
	struct berr err;
	if (f->cg) {
		if (cgroup_kill_all(f->cg, &err) < 0 || cgroup_destroy(f->cg, &err) < 0) {
			/* Killed or destroyed by the test already: what is left
			 * is removed below. */
		}
		cgroup_free(f->cg);
	}
	DIR *d = opendir(ROOT);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), ROOT "/%s/berth/%s", e->d_name, f->name);
		rmdir(path);
	}
	if (d)
		closedir(d);
	if (f->v1_view) {
		DIR *v = opendir(f->tmp);
		while (v && (e = readdir(v))) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", f->tmp, e->d_name);
			if (e->d_name[0] != '.')
				umount2(path, MNT_DETACH);
		}
		if (v)
			closedir(v);
	}
	assert_int_equal(fs_remove_tree(f->tmp, &err), 0);
	free(f);
	return 0;
}

static void create(struct fx *f, const char *root, const struct cgroup_limits *l)
{
	struct berr err;
	if (cgroup_create(root, f->name, l, &f->cg, &err) < 0)
		fail_msg("create %s under %s: %s", f->name, root, err.msg);
}

static char *read_cg(const char *hier, const char *name, const char *file)
{
	static char buf[8192];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), ROOT "/%s/berth/%s/%s", hier, name, file);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static bool cg_exists_anywhere(const char *name)
{
	DIR *d = opendir(ROOT);
	struct dirent *e;
	bool found = false;
	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), ROOT "/%s/berth/%s", e->d_name, name);
		if (access(path, F_OK) == 0)
			found = true;
	}
	if (d)
		closedir(d);
	return found;
}

/* A child that waits for a byte on a pipe (sent once it is in the cgroup),
 * then forks `grandkids` sleepers and sleeps. */
static pid_t spawn(struct fx *f, int grandkids, int *go)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		char c;
		if (read(p[0], &c, 1) != 1)
			_exit(3);
		for (int i = 0; i < grandkids; i++)
			if (fork() == 0)
				for (;;)
					pause();
		for (;;)
			pause();
	}
	close(p[0]);
	f->kids[f->n_kids++] = pid;
	*go = p[1];
	return pid;
}

static void release(int go)
{
	assert_int_equal(write(go, "x", 1), 1);
	close(go);
}

static void wait_count(struct cgroup *cg, int want)
{
	for (int i = 0; i < 500 && cgroup_count_procs(cg) != want; i++)
		usleep(2000);
	assert_int_equal(cgroup_count_procs(cg), want);
}

static void reap_killed(struct fx *f, pid_t pid)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	for (int i = 0; i < f->n_kids; i++)
		if (f->kids[i] == pid)
			f->kids[i] = f->kids[--f->n_kids];
}

/* What the mounts say the layout is, read independently of the code under
 * test: cgroup2 at the root, v1 mounts with or without a cgroup2 one. */
static enum cgroup_layout layout_from_mountinfo(void)
{
	FILE *m = fopen("/proc/self/mountinfo", "r");
	if (!m) {
		perror("/proc/self/mountinfo");
		exit(1);
	}
	char line[4096];
	bool v1 = false, v2_root = false, v2 = false;
	while (fgets(line, sizeof(line), m)) {
		char point[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
			continue;
		const char *dash = strstr(line, " - ");
		if (!dash || strncmp(point, ROOT, strlen(ROOT)) != 0)
			continue;
		if (strncmp(dash, " - cgroup2 ", 11) == 0) {
			v2 = true;
			v2_root |= strcmp(point, ROOT) == 0;
		} else if (strncmp(dash, " - cgroup ", 10) == 0) {
			v1 = true;
		}
	}
	fclose(m);
	return v2_root ? CGROUP_LAYOUT_V2 : v1 && v2 ? CGROUP_LAYOUT_HYBRID : CGROUP_LAYOUT_V1;
}

/* ---- the layout of this machine ---- */

static void detect_matches_the_mounts(void **state)
{
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(ROOT, &l, &err), 0);
	assert_int_equal(l, layout_from_mountinfo());
	if (l == CGROUP_LAYOUT_HYBRID) {
		/* Its cgroup2 part is a v2 root of its own. */
		assert_int_equal(cgroup_detect(UNIFIED, &l, &err), 0);
		assert_int_equal(l, CGROUP_LAYOUT_V2);
	}
}

static char why_skipped[160];

static void needs_the_hybrid_layout(void **state)
{
	printf("    skipped: %s\n", why_skipped);
	skip();
}

/* ---- v1 controllers (hybrid) ---- */

static void v1_limits_are_written_and_read_back(void **state)
{
	struct fx *f = *state;
	struct cgroup_limits l = {
	    .memory = 64 << 20,
	    .memory_swap = 64 << 20,
	    .pids_limit = 50,
	    .cpu_quota_us = 50000,
	    .cpu_period_us = 100000,
	    .cpu_shares = 512,
	};
	create(f, ROOT, &l);
	assert_string_equal(read_cg("memory", f->name, "memory.limit_in_bytes"), "67108864\n");
	assert_string_equal(read_cg("memory", f->name, "memory.memsw.limit_in_bytes"),
			    "67108864\n");
	assert_string_equal(read_cg("pids", f->name, "pids.max"), "50\n");
	assert_string_equal(read_cg("cpu", f->name, "cpu.cfs_quota_us"), "50000\n");
	assert_string_equal(read_cg("cpu", f->name, "cpu.cfs_period_us"), "100000\n");
	assert_string_equal(read_cg("cpu", f->name, "cpu.shares"), "512\n");
	assert_string_equal(read_cg("devices", f->name, "devices.list"),
			    "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\n"
			    "c 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 136:* rwm\n");
	/* A cpuset cgroup can take processes: it has CPUs and memory nodes. */
	assert_string_not_equal(read_cg("cpuset", f->name, "cpuset.cpus"), "\n");
	assert_string_not_equal(read_cg("cpuset", f->name, "cpuset.mems"), "\n");
}

static void v1_destroy_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct cgroup_limits l = {.memory = 32 << 20, .pids_limit = 10};
	create(f, ROOT, &l);
	assert_true(cg_exists_anywhere(f->name));
	char unified[PATH_MAX];
	snprintf(unified, sizeof(unified), UNIFIED "/berth/%s", f->name);
	assert_int_equal(access(unified, F_OK), 0);
	struct berr err;
	if (cgroup_destroy(f->cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(cg_exists_anywhere(f->name));
}

static void v1_process_is_placed_in_every_hierarchy(void **state)
{
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int go;
	pid_t pid = spawn(f, 0, &go);
	struct berr err;
	if (cgroup_add_pid(f->cg, pid, &err) < 0)
		fail_msg("%s", err.msg);
	release(go);
	char path[64], want[128];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	char *text;
	assert_int_equal(fs_read_file(path, 65536, &text, NULL, &err), 0);
	static const char *const ctrls[] = {
	    ":memory:", ":pids:", ":cpu:", ":devices:", ":freezer:", ":cpuset:", ":name=systemd:"};
	for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		snprintf(want, sizeof(want), "%s/berth/%s\n", ctrls[i], f->name);
		if (!strstr(text, want))
			fail_msg("%s not in\n%s", want, text);
	}
	snprintf(want, sizeof(want), "0::/berth/%s\n", f->name);
	assert_non_null(strstr(text, want));
	free(text);
	assert_int_equal(cgroup_count_procs(f->cg), 1);
}

static void instance_of_pid_names_the_instance(void **state)
{
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int go;
	pid_t pid = spawn(f, 0, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	char name[65];
	if (cgroup_instance_of_pid(pid, name, sizeof(name), &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(name, f->name);
	/* This test process is in no instance. */
	assert_int_equal(cgroup_instance_of_pid(getpid(), name, sizeof(name), &err), 1);
}

static void instance_of_pidfd_answers_only_for_a_live_process(void **state)
{
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int go;
	pid_t pid = spawn(f, 0, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pidfd >= 0);
	char name[65];
	if (cgroup_instance_of_pidfd(pidfd, name, sizeof(name), &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(name, f->name);
	kill(pid, SIGKILL);
	reap_killed(f, pid);
	assert_int_equal(cgroup_instance_of_pidfd(pidfd, name, sizeof(name), &err), -1);
	assert_int_equal(err.code, ESRCH);
	close(pidfd);
	assert_int_equal(cgroup_instance_of_pidfd(0, name, sizeof(name), &err), -1);
}

static void kill_all_kills_the_process_tree(void **state)
{
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int go;
	pid_t pid = spawn(f, 3, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	wait_count(f->cg, 4);
	if (cgroup_kill_all(f->cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_count_procs(f->cg), 0);
	reap_killed(f, pid);
	assert_int_equal(cgroup_destroy(f->cg, &err), 0);
}

static void oom_kill_is_reported(void **state)
{
	struct fx *f = *state;
	struct cgroup_limits l = {.memory = 16 << 20, .memory_swap = 16 << 20};
	create(f, ROOT, &l);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(3);
		/* Touch 128 MiB, a page at a time: the limit stops it. */
		for (int i = 0; i < 128; i++) {
			char *m = malloc(1 << 20);
			if (!m)
				_exit(4);
			for (int k = 0; k < (1 << 20); k += 4096)
				m[k] = (char)k;
		}
		_exit(0);
	}
	close(p[0]);
	f->kids[f->n_kids++] = pid;
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	assert_false(cgroup_oom_killed(f->cg));
	release(p[1]);
	reap_killed(f, pid);
	assert_true(cgroup_oom_killed(f->cg));
}

static void memory_current_counts_what_the_instance_uses(void **state)
{
	struct fx *f = *state;
	struct cgroup_limits l = {.memory = 256 << 20};
	create(f, ROOT, &l);
	int go[2], ready[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		char *m = malloc(32 << 20);
		for (int k = 0; k < (32 << 20); k += 4096)
			m[k] = 1;
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	f->kids[f->n_kids++] = pid;
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	int64_t cur = cgroup_memory_current(f->cg);
	assert_true(cur >= 32 << 20);
	assert_true(cur < 256 << 20);
	assert_false(cgroup_oom_killed(f->cg));
	close(go[0]);
	close(ready[0]);
	close(ready[1]);
}

static void leftover_cgroup_is_taken_over(void **state)
{
	struct fx *f = *state;
	struct cgroup_limits first = {.pids_limit = 5, .memory = 48 << 20};
	create(f, ROOT, &first);
	int go;
	pid_t pid = spawn(f, 1, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	wait_count(f->cg, 2);
	/* The shim dies: its cgroup and processes stay. */
	cgroup_free(f->cg);
	f->cg = NULL;

	struct cgroup_limits second = {.memory = 24 << 20};
	create(f, ROOT, &second);
	assert_int_equal(cgroup_count_procs(f->cg), 0);
	reap_killed(f, pid);
	assert_string_equal(read_cg("memory", f->name, "memory.limit_in_bytes"), "25165824\n");
	assert_string_equal(read_cg("pids", f->name, "pids.max"), "max\n");
}

/* ---- v1 only: the freezer kills ---- */

/* A mount namespace view holding only the v1 hierarchies, as a v1 host
 * has them: bind mounts keep their "cgroup" type and controller options. */
static void make_v1_view(struct fx *f)
{
	static const char *const h[] = {"memory", "pids", "freezer", "cpu", "devices"};
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		char src[PATH_MAX], dst[PATH_MAX];
		snprintf(src, sizeof(src), ROOT "/%s", h[i]);
		snprintf(dst, sizeof(dst), "%s/%s", f->tmp, h[i]);
		assert_int_equal(mkdir(dst, 0755), 0);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			fail_msg("bind %s: %s", src, strerror(errno));
	}
	f->v1_view = true;
}

static void v1_only_kill_all_freezes_and_kills_forking_processes(void **state)
{
	struct fx *f = *state;
	make_v1_view(f);
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(f->tmp, &l, &err), 0);
	assert_int_equal(l, CGROUP_LAYOUT_V1);
	create(f, f->tmp, NULL);
	assert_int_equal(cgroup_unified_fd(f->cg), -1);
	int go;
	pid_t pid = spawn(f, 4, &go);
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	wait_count(f->cg, 5);
	/* Its unified line says "0::/": the memory line names the instance. */
	char who[65];
	if (cgroup_instance_of_pid(pid, who, sizeof(who), &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(who, f->name);
	if (cgroup_kill_all(f->cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_count_procs(f->cg), 0);
	reap_killed(f, pid);
	/* Left thawed, so a later process is not stuck. */
	assert_string_equal(read_cg("freezer", f->name, "freezer.state"), "THAWED\n");
	char name[65];
	assert_int_equal(cgroup_instance_of_pid(getpid(), name, sizeof(name), &err), 1);
	assert_int_equal(cgroup_destroy(f->cg, &err), 0);
	assert_false(cg_exists_anywhere(f->name));
}

static void single_v1_hierarchy_as_the_root(void **state)
{
	/* A root that is itself one v1 mount: only its controller is there. */
	struct fx *f = *state;
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(ROOT "/memory", &l, &err), 0);
	assert_int_equal(l, CGROUP_LAYOUT_V1);
	struct cgroup_limits mem = {.memory = 20 << 20, .allow_all_devices = true};
	create(f, ROOT "/memory", &mem);
	assert_string_equal(read_cg("memory", f->name, "memory.limit_in_bytes"), "20971520\n");
	assert_int_equal(cgroup_destroy(f->cg, &err), 0);
	cgroup_free(f->cg);
	f->cg = NULL;
	struct cgroup *cg;
	struct cgroup_limits pids = {.pids_limit = 3, .allow_all_devices = true};
	assert_int_equal(cgroup_create(ROOT "/memory", f->name, &pids, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "no pids controller"));
	assert_int_equal(cgroup_create(ROOT "/memory", f->name, NULL, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "no devices controller"));
	assert_false(cg_exists_anywhere(f->name));
}

/* ---- devices ---- */

enum op { OPEN_RD, OPEN_WR, MKNOD_CHR };
struct probe {
	enum op op;
	const char *path;
	unsigned major, minor;
};

/* Runs each probe in a child placed in the cgroup; results[i] is 0 or
 * the errno. */
static void probe_in(struct fx *f, const struct probe *p, int n, int *results)
{
	int go[2], res[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		for (int i = 0; i < n; i++) {
			int r = 0;
			if (p[i].op == MKNOD_CHR) {
				unlink(p[i].path);
				if (mknod(p[i].path, S_IFCHR | 0600,
					  makedev(p[i].major, p[i].minor)) < 0)
					r = errno;
			} else {
				int fd = open(p[i].path, p[i].op == OPEN_RD ? O_RDONLY : O_WRONLY);
				if (fd < 0)
					r = errno;
				else
					close(fd);
			}
			if (write(res[1], &r, sizeof(r)) != sizeof(r))
				_exit(4);
		}
		_exit(0);
	}
	f->kids[f->n_kids++] = pid;
	close(go[0]);
	close(res[1]);
	struct berr err;
	if (cgroup_add_pid(f->cg, pid, &err) < 0)
		fail_msg("%s", err.msg);
	release(go[1]);
	for (int i = 0; i < n; i++)
		assert_int_equal(read(res[0], &results[i], sizeof(int)), sizeof(int));
	close(res[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	f->n_kids--;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Device nodes in the scratch directory: null (1:3), zero (1:5) and one
 * with no driver (240:0, a "local use" major): opening it gives ENXIO when
 * the cgroup lets it through and EPERM when it does not. */
static void make_nodes(struct fx *f, char *null, char *zero, char *nodrv)
{
	sprintf(null, "%s/null", f->tmp);
	sprintf(zero, "%s/zero", f->tmp);
	sprintf(nodrv, "%s/nodrv", f->tmp);
	assert_int_equal(mknod(null, S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(mknod(zero, S_IFCHR | 0666, makedev(1, 5)), 0);
	assert_int_equal(mknod(nodrv, S_IFCHR | 0666, makedev(240, 0)), 0);
}

static void device_rules_limit_opens(struct fx *f, const char *root)
{
	char null[128], zero[128], nodrv[128], made[128];
	make_nodes(f, null, zero, nodrv);
	sprintf(made, "%s/made", f->tmp);
	const struct cgroup_device only_null[] = {{'c', 1, 3, "rwm", true}};
	struct cgroup_limits l = {.devices = only_null, .n_devices = 1};
	create(f, root, &l);
	const struct probe p[] = {
	    {OPEN_RD, null, 0, 0},  {OPEN_WR, null, 0, 0},   {OPEN_RD, zero, 0, 0},
	    {OPEN_RD, nodrv, 0, 0}, {MKNOD_CHR, made, 1, 5}, {MKNOD_CHR, made, 1, 3},
	};
	int r[6];
	probe_in(f, p, 6, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 0);
	assert_int_equal(r[2], EPERM);
	assert_int_equal(r[3], EPERM);
	assert_int_equal(r[4], EPERM);
	assert_int_equal(r[5], 0);
}

static void v1_device_rules_limit_opens(void **state)
{
	device_rules_limit_opens(*state, ROOT);
}

static void v2_device_program_limits_opens(void **state)
{
	device_rules_limit_opens(*state, UNIFIED);
}

static void v2_default_devices_exclude_others(void **state)
{
	struct fx *f = *state;
	char null[128], zero[128], nodrv[128];
	make_nodes(f, null, zero, nodrv);
	create(f, UNIFIED, NULL);
	const struct probe p[] = {
	    {OPEN_WR, null, 0, 0}, {OPEN_RD, zero, 0, 0}, {OPEN_RD, nodrv, 0, 0}};
	int r[3];
	probe_in(f, p, 3, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 0);
	assert_int_equal(r[2], EPERM);
}

static void v2_access_is_limited_to_the_rule(void **state)
{
	struct fx *f = *state;
	char null[128], zero[128], nodrv[128];
	make_nodes(f, null, zero, nodrv);
	const struct cgroup_device read_only[] = {{'c', 1, 3, "r", true}};
	struct cgroup_limits l = {.devices = read_only, .n_devices = 1};
	create(f, UNIFIED, &l);
	const struct probe p[] = {{OPEN_RD, null, 0, 0}, {OPEN_WR, null, 0, 0}};
	int r[2];
	probe_in(f, p, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], EPERM);
}

static void v2_leftover_device_program_is_replaced(void **state)
{
	struct fx *f = *state;
	char null[128], zero[128], nodrv[128];
	make_nodes(f, null, zero, nodrv);
	const struct cgroup_device only_null[] = {{'c', 1, 3, "rwm", true}};
	struct cgroup_limits strict = {.devices = only_null, .n_devices = 1};
	create(f, UNIFIED, &strict);
	cgroup_free(f->cg);
	f->cg = NULL;
	struct cgroup_limits all = {.allow_all_devices = true};
	create(f, UNIFIED, &all);
	const struct probe p[] = {{OPEN_RD, zero, 0, 0}, {OPEN_RD, nodrv, 0, 0}};
	int r[2];
	probe_in(f, p, 2, r);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], ENXIO);
}

/* ---- cgroup2 ---- */

static void v2_membership_and_cgroup_kill(void **state)
{
	struct fx *f = *state;
	create(f, UNIFIED, NULL);
	int go;
	pid_t pid = spawn(f, 2, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	wait_count(f->cg, 3);
	char name[65];
	assert_int_equal(cgroup_instance_of_pid(pid, name, sizeof(name), &err), 0);
	assert_string_equal(name, f->name);
	if (cgroup_kill_all(f->cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_count_procs(f->cg), 0);
	reap_killed(f, pid);
	assert_int_equal(cgroup_destroy(f->cg, &err), 0);
	assert_false(cg_exists_anywhere(f->name));
}

static void v2_without_cgroup_kill_freezes_and_kills(void **state)
{
	struct fx *f = *state;
	create(f, UNIFIED, NULL);
	int go;
	pid_t pid = spawn(f, 3, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	wait_count(f->cg, 4);
	cgroup_disable_kill_file();
	if (cgroup_kill_all(f->cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_count_procs(f->cg), 0);
	reap_killed(f, pid);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), UNIFIED "/berth/%s/cgroup.freeze", f->name);
	char *text;
	assert_int_equal(fs_read_file(path, 64, &text, NULL, &err), 0);
	assert_string_equal(text, "0\n");
	free(text);
}

static void v2_clone_into_the_unified_cgroup(void **state)
{
	struct fx *f = *state;
	create(f, UNIFIED, NULL);
	int fd = cgroup_unified_fd(f->cg);
	assert_true(fd >= 0);
	struct clone_args args = {
	    .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)fd};
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	f->kids[f->n_kids++] = (pid_t)pid;
	char name[65];
	struct berr err;
	assert_int_equal(cgroup_instance_of_pid((pid_t)pid, name, sizeof(name), &err), 0);
	assert_string_equal(name, f->name);
	assert_int_equal(cgroup_count_procs(f->cg), 1);
}

static void check_in_every_hierarchy(pid_t pid, const char *name)
{
	char path[64], want[128];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	char *text;
	struct berr err;
	assert_int_equal(fs_read_file(path, 65536, &text, NULL, &err), 0);
	static const char *const ctrls[] = {":memory:",	 ":pids:",   ":cpu:",	       ":devices:",
					    ":freezer:", ":cpuset:", ":name=systemd:", "0::"};
	for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		snprintf(want, sizeof(want), "%s/berth/%s\n", ctrls[i], name);
		if (!strstr(text, want))
			fail_msg("%s not in\n%s", want, text);
	}
	free(text);
}

static void instance_in_a_user_namespace_is_cloned_into_v2_and_joins_v1_itself(void **state)
{
	/* As the sandbox starts one: clone3 into the unified cgroup with a new
	 * user namespace, then the process moves itself into its v1 cgroups
	 * while it is still host root (no id map written yet). */
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int fd = cgroup_unified_fd(f->cg);
	assert_true(fd >= 0);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct clone_args args = {.flags = CLONE_INTO_CGROUP | CLONE_NEWUSER,
				  .exit_signal = SIGCHLD,
				  .cgroup = (uint64_t)fd};
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	assert_true(pid >= 0);
	if (pid == 0) {
		struct berr err;
		char ok = cgroup_join_self(f->cg, &err) == 0 ? 'y' : 'n';
		if (write(p[1], &ok, 1) != 1 || ok != 'y')
			_exit(1);
		for (;;)
			pause();
	}
	f->kids[f->n_kids++] = (pid_t)pid;
	close(p[1]);
	char ok = 0;
	assert_int_equal(read(p[0], &ok, 1), 1);
	close(p[0]);
	assert_int_equal(ok, 'y');
	check_in_every_hierarchy((pid_t)pid, f->name);
}

static void open_reattaches_to_a_running_instance(void **state)
{
	struct fx *f = *state;
	create(f, ROOT, NULL);
	int go;
	pid_t pid = spawn(f, 0, &go);
	struct berr err;
	assert_int_equal(cgroup_add_pid(f->cg, pid, &err), 0);
	release(go);
	struct cgroup *again;
	if (cgroup_open(ROOT, f->name, &again, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_count_procs(again), 1);
	assert_int_equal(cgroup_kill_all(again, &err), 0);
	reap_killed(f, pid);
	cgroup_free(again);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr,
			"test_cgroup_real: creates cgroups and device nodes: run as root\n");
		return 1;
	}
	/* Bind mounts made here vanish with this process. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		perror("test_cgroup_real: private mount namespace");
		return 1;
	}
	log_set_level(LOG_LVL_ERROR);
	struct CMUnitTest tests[] = {
	    cmocka_unit_test(detect_matches_the_mounts),
	    T(v1_limits_are_written_and_read_back),
	    T(v1_destroy_leaves_nothing),
	    T(v1_process_is_placed_in_every_hierarchy),
	    T(instance_of_pid_names_the_instance),
	    T(instance_of_pidfd_answers_only_for_a_live_process),
	    T(kill_all_kills_the_process_tree),
	    T(oom_kill_is_reported),
	    T(memory_current_counts_what_the_instance_uses),
	    T(leftover_cgroup_is_taken_over),
	    T(open_reattaches_to_a_running_instance),
	    T(v1_only_kill_all_freezes_and_kills_forking_processes),
	    T(single_v1_hierarchy_as_the_root),
	    T(v1_device_rules_limit_opens),
	    T(v2_device_program_limits_opens),
	    T(v2_default_devices_exclude_others),
	    T(v2_access_is_limited_to_the_rule),
	    T(v2_leftover_device_program_is_replaced),
	    T(v2_membership_and_cgroup_kill),
	    T(v2_clone_into_the_unified_cgroup),
	    T(instance_in_a_user_namespace_is_cloned_into_v2_and_joins_v1_itself),
	    /* Last: it turns cgroup.kill off for the rest of this process. */
	    T(v2_without_cgroup_kill_freezes_and_kills),
	};
	enum cgroup_layout layout = layout_from_mountinfo();
	if (layout != CGROUP_LAYOUT_HYBRID) {
		snprintf(why_skipped, sizeof(why_skipped),
			 "needs v1 controllers with a cgroup2 at " UNIFIED
			 " (the hybrid layout); this host's layout is %s",
			 cgroup_layout_name(layout));
		for (size_t i = 1; i < ARRAY_SIZE(tests); i++)
			tests[i] = (struct CMUnitTest){tests[i].name, needs_the_hybrid_layout, NULL,
						       NULL, NULL};
	}
	return cmocka_run_group_tests_name("cgroup (kernel)", tests, NULL, NULL);
}
