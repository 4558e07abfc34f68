/* Starting an instance: the parent's side (cgroup, clone, id maps, the
 * idmapped root for user namespaces) and the first steps of the instance
 * process, up to the root file system (rootfs.c) and exec (process.c).
 *
 * Parent and instance talk over a SOCK_SEQPACKET pair:
 *   parent -> instance  'G' [root fd]      user namespace: ids mapped, root attached
 *                       'C'                moved into the cgroup (kernels without
 *                                          clone3 into a cgroup: see cgroup.h)
 *   instance -> parent  'T' fd             the terminal master (SB_STDIO_TTY)
 *                       'E'                about to exec
 *                       'X' message        failed; the message says why
 * The instance's end is close-on-exec, so after 'E' an end of file means the
 * exec succeeded and a message means it failed.
 *
 * Why the instance can never reach the berth binary (the class of
 * CVE-2019-5736, where a container rewrote runc through /proc/<pid>/exe):
 * - the berth code that runs in the instance is its pid 1 before exec; it is
 *   the first process of a new pid namespace, so no process of the instance
 *   exists yet that could open /proc/1/exe while it still names berth, and
 *   after exec /proc/1/exe is the module's own program;
 * - the supervisor (berth run, the shim, the starter) lives in the parent
 *   pid namespace: it has no pid in the instance's /proc, which is mounted
 *   for the instance's namespace only, and the old root, host /proc
 *   included, is detached before exec;
 * - `berth exec` and health checks enter a running instance from its shim
 *   (shim/exec.c): that process is made non-dumpable before it joins any
 *   namespace, so until it executes its program nothing of the instance
 *   without CAP_SYS_PTRACE in the host's user namespace can open its
 *   /proc/<pid>/exe, fd, mem or environ, nor trace it; it holds no
 *   descriptor of berth's by then (the comment of shim/exec.c has the rest);
 * - no descriptor of berth's crosses exec (all are closed or close-on-exec),
 *   so /proc/self/fd offers no way back either.
 * tests/e2e/test_isolation.py checks this from inside: every /proc/<pid>/exe
 * is the module's and none can be opened for writing. */
#include "shim/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/lazy.h"
#include "common/log.h"
#include "common/sock.h"
#include "common/strv.h"
#include "shim/syscalls.h"

struct sandbox *sandbox_new(void)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return NULL;
	sb->root_propagation = MS_PRIVATE | MS_REC;
	sb->stdio_fds[0] = sb->stdio_fds[1] = sb->stdio_fds[2] = -1;
	return sb;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	for (size_t i = 0; i < sb->n_mounts; i++) {
		struct sb_mount *m = &sb->mounts[i];
		free_many(m->destination, m->type, m->source, m->data, m->content);
		if (m->source_fd >= 0)
			close(m->source_fd);
	}
	free_many(sb->name, sb->instance_dir, sb->upper_dir, sb->work_dir, sb->mountpoint,
		  sb->rootfs_dir, sb->hostname, sb->netns_path, sb->mounts, sb->cwd, sb->user,
		  sb->groups, sb->rlimits, sb->devices);
	strv_free_many(sb->layer_dirs, sb->masked_paths, sb->readonly_paths, sb->device_hosts,
		       sb->device_paths, sb->args, sb->env);
	seccomp_filter_free(sb->filter);
	if (sb->doc)
		yajl_tree_free(sb->doc);
	free(sb);
}

int sandbox_add_mount(struct sandbox *sb, enum sb_mount_kind kind, const char *type,
		      const char *source, const char *destination, unsigned long flags,
		      const char *data, struct berr *err)
{
	if (sb->n_mounts >= 1024)
		return berr_set(err, 0, "more than 1024 mounts");
	struct sb_mount *nm = realloc(sb->mounts, (sb->n_mounts + 1) * sizeof(*nm));
	if (!nm)
		return berr_set(err, ENOMEM, "mount %s", destination);
	sb->mounts = nm;
	struct sb_mount *m = &nm[sb->n_mounts];
	memset(m, 0, sizeof(*m));
	bool ok = true;
	m->kind = kind;
	m->source_fd = -1;
	m->flags = flags;
	m->type = dup_or_null(type, &ok);
	m->source = dup_or_null(source, &ok);
	m->destination = dup_or_null(destination, &ok);
	m->data = dup_or_null(data, &ok);
	sb->n_mounts++;
	if (!ok)
		return berr_set(err, ENOMEM, "mount %s", destination);
	return 0;
}

/* --- the instance process --- */

void sandbox_child_fail(int sync_fd, const struct berr *err)
{
	char msg[5 + BERR_MSG_MAX];
	msg[0] = 'X';
	int32_t code = err->code;
	memcpy(msg + 1, &code, 4);
	size_t n = strnlen(err->msg, BERR_MSG_MAX - 1);
	memcpy(msg + 5, err->msg, n);
	ssize_t w = send(sync_fd, msg, n + 5, MSG_NOSIGNAL);
	(void)w;
	_exit(127);
}

static int recv_tag(int sock, char want, int *fd, struct berr *err)
{
	char tag = 0;
	int got;
	ssize_t n = sock_recv_with_fd(sock, &tag, 1, &got, 0);
	if (n <= 0 || tag != want) {
		int code = n < 0 ? errno : 0;
		if (got >= 0)
			close(got);
		return berr_set(err, code, "waiting for the parent");
	}
	if (fd && got >= 0)
		*fd = got;
	else if (got >= 0)
		close(got);
	return 0;
}

/* Without clone3 into its v2 cgroup (Linux < 5.7) the parent moves the
 * instance there, which waits for an RCU grace period: it does so while the
 * instance mounts its root, and the instance waits here only when it needs
 * the cgroup. */
int sandbox_join_cgroup(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	if (c->in_cgroup && c->cgroup_ns_done)
		return 0;
	if (!c->in_cgroup && recv_tag(c->sync_fd, 'C', NULL, err) < 0)
		_exit(127); /* the parent is gone or failed: it reports why */
	c->in_cgroup = true;
	c->cgroup_ns_done = true;
	if ((sb->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		return berr_set(err, errno, "cgroup namespace");
	return 0;
}

/* Moves the caller-chosen descriptors onto 0, 1 and 2. */
static int setup_stdio(struct sandbox *sb, struct berr *err)
{
	if (sb->stdio != SB_STDIO_FDS)
		return 0;
	int high[3];
	for (int i = 0; i < 3; i++) {
		high[i] = fcntl(sb->stdio_fds[i], F_DUPFD_CLOEXEC, 10);
		if (high[i] < 0)
			return berr_set(err, errno, "stdio");
	}
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			return berr_set(err, errno, "stdio");
	return 0;
}

/* How the instance gets into its cgroup, decided by the parent before clone. */
struct child_plan {
	bool wait_go;	   /* user namespace: ids mapped and root built by the parent */
	struct cgroup *cg; /* joins its v1 cgroups itself */
	bool wait_joined;  /* the parent moves it ('C'): no clone3 into the v2 cgroup */
};

static __attribute__((noreturn)) void child_main(struct sandbox *sb, int sync_fd,
						 const struct child_plan *plan)
{
	struct berr err;
	struct sb_child c = {.sync_fd = sync_fd, .root_mount_fd = -1, .root_fd = -1};
	berr_clear(&err);
	/* sandbox_start() loaded what this process calls (libcap). */
	lazy_seal("the clone of the instance process");
	/* The instance does not outlive its supervisor. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		berr_set(&err, errno, "PR_SET_PDEATHSIG");
		sandbox_child_fail(sync_fd, &err);
	}
	/* Born in its v2 cgroup (clone3); the v1 ones it joins itself, first
	 * thing: in a user namespace it is still host root until it switches
	 * to the namespace's root below. */
	if (plan->cg && cgroup_join_self(plan->cg, &err) < 0)
		sandbox_child_fail(sync_fd, &err);
	if (plan->wait_go && recv_tag(sync_fd, 'G', &c.root_mount_fd, &err) < 0)
		_exit(127);
	c.in_cgroup = !plan->wait_joined;
	if (sb->clone_flags & CLONE_NEWUSER) {
		/* Become the namespace's root (host root is unmapped in it). */
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || setgroups(0, NULL) < 0) {
			berr_set(&err, errno, "become root in the user namespace");
			sandbox_child_fail(sync_fd, &err);
		}
	}
	if (setsid() < 0) {
		berr_set(&err, errno, "setsid");
		sandbox_child_fail(sync_fd, &err);
	}
	if (setup_stdio(sb, &err) < 0)
		sandbox_child_fail(sync_fd, &err);
	if ((sb->clone_flags & CLONE_NEWNET) && netns_loopback_up(&err) < 0)
		sandbox_child_fail(sync_fd, &err);
	if (sb->hostname && sethostname(sb->hostname, strlen(sb->hostname)) < 0) {
		berr_set(&err, errno, "sethostname %s", sb->hostname);
		sandbox_child_fail(sync_fd, &err);
	}
	if (rootfs_setup(sb, &c, &err) < 0) {
		berr_wrap(&err, "root file system");
		sandbox_child_fail(sync_fd, &err);
	}
	/* Returns only when the exec failed. */
	if (process_exec(sb, &c, &err) < 0)
		sandbox_child_fail(sync_fd, &err);
	_exit(127);
}

/* --- the parent --- */

static int write_idmap(pid_t pid, const char *file, const struct sb_idmap *map, size_t n,
		       struct berr *err)
{
	char path[64], buf[SB_IDMAP_MAX * 40];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", map[i].inside,
					map[i].outside, map[i].count);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return berr_set(err, errno, "write %s", path);
	return 0;
}

/* Layers belong to host root; inside a user namespace they must appear as
 * owned by the namespace's root. Each layer gets an idmapped, read-only
 * detached mount (Linux 5.12+ and a file system that supports it), and the
 * overlay is built from those here, in the initial user namespace. */
static int build_idmapped_overlay(struct sandbox *sb, int userns, int *out, struct berr *err)
{
	size_t nl = strv_len(sb->layer_dirs);
	int *fds = calloc(nl ? nl : 1, sizeof(int));
	if (!fds)
		return berr_set(err, ENOMEM, "layers");
	for (size_t i = 0; i < nl; i++)
		fds[i] = -1;
	int rc = -1;
	int fs = -1;
	for (size_t i = 0; i < nl; i++) {
		fds[i] =
		    sys_open_tree(AT_FDCWD, sb->layer_dirs[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (fds[i] < 0) {
			berr_set(err, errno, "user namespace: clone layer %s", sb->layer_dirs[i]);
			goto out;
		}
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
					  .userns_fd = (uint64_t)userns};
		if (sys_mount_setattr(fds[i], "", AT_EMPTY_PATH, &attr) < 0) {
			berr_set(
			    err, errno,
			    "user namespace: idmapped mount of layer %s (needs Linux 5.12+ and "
			    "a file system that supports idmapped mounts)",
			    sb->layer_dirs[i]);
			goto out;
		}
	}
	fs = sys_fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0) {
		berr_set(err, errno, "user namespace: fsopen overlay");
		goto out;
	}
	/* fsconfig takes strings of at most 256 bytes: "lowerdir+" (Linux
	 * 6.8+) adds one layer at a time, top first; older kernels get one
	 * "lowerdir" list when it fits. */
	char lower[256] = "";
	size_t llen = 0;
	bool plus = true;
	for (size_t i = nl; i-- > 0;) {
		char one[32];
		snprintf(one, sizeof(one), "/proc/self/fd/%d", fds[i]);
		if (plus && sys_fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", one, 0) < 0) {
			if (i != nl - 1) {
				berr_set(err, errno, "user namespace: overlay layer %s",
					 sb->layer_dirs[i]);
				goto out;
			}
			plus = false;
		}
		if (!plus) {
			int w = snprintf(lower + llen, sizeof(lower) - llen, "%s%s",
					 llen ? ":" : "", one);
			if (w < 0 || (size_t)w >= sizeof(lower) - llen) {
				berr_set(err, E2BIG, "user namespace: %zu layers need Linux 6.8+",
					 nl);
				goto out;
			}
			llen += (size_t)w;
		}
	}
	if (!plus && sys_fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0) {
		berr_set(err, errno, "user namespace: overlay lowerdir");
		goto out;
	}
	if (sys_fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", sb->upper_dir, 0) < 0 ||
	    sys_fsconfig(fs, FSCONFIG_SET_STRING, "workdir", sb->work_dir, 0) < 0 ||
	    sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		berr_set(err, errno, "user namespace: create the overlay");
		goto out;
	}
	int mfd = sys_fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0) {
		berr_set(err, errno, "user namespace: fsmount overlay");
		goto out;
	}
	*out = mfd;
	rc = 0;
out:
	for (size_t i = 0; i < nl; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	if (fs >= 0)
		close(fs);
	return rc;
}

/* In a user namespace the instance cannot reach host-root-owned paths such
 * as its own directory, so the parent builds the root and attaches it in the
 * instance's mount namespace (made private first, so nothing propagates to
 * the host), then hands the instance a descriptor of it. */
static int attach_root_for_userns(struct sandbox *sb, pid_t pid, int *out, struct berr *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	cleanup_close int userns = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	cleanup_close int child_ns = open(path, O_RDONLY | O_CLOEXEC);
	cleanup_close int own_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	cleanup_close int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (userns < 0 || child_ns < 0 || own_ns < 0 || cwd < 0)
		return berr_set(err, errno, "user namespace: open namespaces of %d", (int)pid);
	cleanup_close int mfd = -1;
	if (sb->layer_dirs) {
		if (build_idmapped_overlay(sb, userns, &mfd, err) < 0)
			return -1;
	} else {
		mfd = sys_open_tree(AT_FDCWD, sb->rootfs_dir,
				    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (mfd < 0)
			return berr_set(err, errno, "user namespace: clone the root %s",
					sb->rootfs_dir);
	}
	if (setns(child_ns, CLONE_NEWNS) < 0)
		return berr_set(err, errno, "user namespace: enter the mount namespace");
	int rc = 0;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		rc = berr_set(err, errno, "user namespace: make / private");
	else if (sys_move_mount(mfd, "", AT_FDCWD, sb->mountpoint, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		rc = berr_set(err, errno, "user namespace: attach the root on %s", sb->mountpoint);
	if (setns(own_ns, CLONE_NEWNS) < 0 || fchdir(cwd) < 0) {
		/* This process now lives in the instance's mount namespace. */
		log_error("cannot return to the original mount namespace: %s", strerror(errno));
		_exit(125);
	}
	if (rc < 0)
		return -1;
	*out = take_fd(&mfd);
	return 0;
}

static int send_go(int sock, int fd, struct berr *err)
{
	return sync_send_fd(sock, 'G', fd, err);
}

int sandbox_wait_exec(int sock, struct sandbox_proc *p, struct berr *err)
{
	bool about_to_exec = false;
	for (;;) {
		char buf[5 + BERR_MSG_MAX];
		int fd;
		ssize_t n = sock_recv_with_fd(sock, buf, sizeof(buf) - 1, &fd, 0);
		if (fd >= 0 && (n <= 0 || buf[0] != 'T')) {
			close(fd);
			fd = -1;
		}
		if (n < 0)
			return berr_set(err, errno, "reading from the instance");
		if (n == 0) {
			if (about_to_exec)
				return 0;
			int status = 0;
			if (waitpid(p->pid, &status, 0) == p->pid) {
				p->pid = -1;
				if (WIFSIGNALED(status))
					return berr_set(
					    err, 0,
					    "the instance process was killed by signal %d "
					    "while starting",
					    WTERMSIG(status));
			}
			return berr_set(err, 0, "the instance process died while starting");
		}
		buf[n] = '\0';
		if (buf[0] == 'X' && n >= 5) {
			int32_t code;
			memcpy(&code, buf + 1, 4);
			berr_set(err, 0, "%s", buf + 5);
			err->code = code; /* the message already names the cause */
			return -1;
		}
		if (buf[0] == 'E') {
			about_to_exec = true;
		} else if (buf[0] == 'T') {
			if (fd < 0)
				return berr_set(err, 0, "the instance sent no terminal");
			p->tty_master = fd;
		}
	}
}

/* Clones the instance, into its v2 cgroup when there is one (clone3,
 * CLONE_INTO_CGROUP, Linux 5.7+); *into says whether that happened. */
static pid_t clone_instance(struct sandbox *sb, int cgroup_fd, bool *into)
{
	unsigned long flags =
	    (unsigned long)sb->clone_flags | (sb->clone_parent ? CLONE_PARENT : 0);
	*into = false;
	if (cgroup_fd >= 0) {
		/* With CLONE_PARENT the exit signal is the caller's own. */
		struct clone3_args args = {.flags = flags | CLONE_INTO_CGROUP,
					   .exit_signal = sb->clone_parent ? 0 : SIGCHLD,
					   .cgroup = (uint64_t)cgroup_fd};
		pid_t pid = sys_clone3(&args);
		if (pid >= 0) {
			*into = true;
			return pid;
		}
		if (errno != ENOSYS && errno != E2BIG && errno != EINVAL)
			return -1;
	}
	/* A fork-like clone: the instance continues on a copy of this stack.
	 * The callers (berth run, the shim's starter) are single-threaded. */
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* Enters the instance's network namespace for the clone; *own keeps the
 * caller's. The caller is single-threaded (berth run, the shim's starter). */
static int netns_enter(struct sandbox *sb, int *own, struct berr *err)
{
	cleanup_close int target = open(sb->netns_path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return berr_set(err, errno, "instance %s: network namespace %s", sb->name,
				sb->netns_path);
	*own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*own < 0)
		return berr_set(err, errno, "instance %s: own network namespace", sb->name);
	if (setns(target, CLONE_NEWNET) < 0) {
		int e = errno;
		close(*own);
		*own = -1;
		return berr_set(err, e, "instance %s: enter network namespace %s", sb->name,
				sb->netns_path);
	}
	return 0;
}

static int netns_leave(struct sandbox *sb, int *own, struct berr *err)
{
	int rc = setns(*own, CLONE_NEWNET);
	int e = errno;
	close(*own);
	*own = -1;
	if (rc < 0 && err)
		berr_set(err, e, "instance %s: return to the own network namespace", sb->name);
	return rc;
}

int sandbox_start(struct sandbox *sb, struct sandbox_proc *p, struct berr *err)
{
	p->pid = -1;
	p->cg = NULL;
	p->tty_master = -1;
	p->started_at = 0;
	int sv[2] = {-1, -1};
	int overlay_fd = -1;
	int own_netns = -1;
	bool userns = sb->clone_flags & CLONE_NEWUSER;
	/* The instance sets its capabilities with libcap after its root has
	 * changed, where the library cannot be opened any more. */
	if (lazy_require(LAZY_CAP, err) < 0) {
		berr_wrap(err, "instance %s", sb->name);
		goto fail;
	}
	/* The filter is built (or read from the cache) here, so the instance
	 * only loads it. */
	if (!sb->filter && sb->seccomp != SB_SECCOMP_NONE &&
	    (sb->seccomp == SB_SECCOMP_DEFAULT
		 ? seccomp_filter_default(sb->seccomp_caps, &sb->filter, err)
		 : seccomp_filter_oci(sb->seccomp_oci, &sb->filter, err)) < 0) {
		berr_wrap(err, "instance %s: seccomp", sb->name);
		goto fail;
	}
	if (rootfs_prepare_binds(sb, err) < 0) {
		berr_wrap(err, "instance %s", sb->name);
		goto fail;
	}
	if (cgroup_create(CGROUP_FS_ROOT, sb->name, &sb->limits, &p->cg, err) < 0) {
		berr_wrap(err, "instance %s: cgroup", sb->name);
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		berr_set(err, errno, "instance %s: socketpair", sb->name);
		goto fail;
	}
	if (sb->netns_path && netns_enter(sb, &own_netns, err) < 0)
		goto fail;
	int v2 = cgroup_unified_fd(p->cg);
	bool into = false;
	struct child_plan plan = {.wait_go = userns, .cg = p->cg};
	pid_t pid = clone_instance(sb, v2, &into);
	int clone_errno = errno;
	if (pid != 0 && own_netns >= 0 && netns_leave(sb, &own_netns, err) < 0) {
		if (pid > 0)
			p->pid = pid;
		goto fail;
	}
	if (pid < 0) {
		berr_set(err, clone_errno, "instance %s: clone", sb->name);
		goto fail;
	}
	/* Parent and instance both see whether clone3 put it into its v2 cgroup;
	 * if not, the parent moves it there (and, harmlessly, again into v1). */
	plan.wait_joined = v2 >= 0 && !into;
	if (pid == 0) {
		close(sv[0]);
		child_main(sb, sv[1], &plan);
	}
	p->pid = pid;
	close(sv[1]);
	sv[1] = -1;
	rootfs_close_binds(sb);
	if (userns) {
		if (write_idmap(pid, "uid_map", sb->uid_map, sb->n_uid_map, err) < 0 ||
		    write_idmap(pid, "gid_map", sb->gid_map, sb->n_gid_map, err) < 0) {
			berr_wrap(err, "instance %s: user namespace", sb->name);
			goto fail;
		}
		if (attach_root_for_userns(sb, pid, &overlay_fd, err) < 0 ||
		    send_go(sv[0], overlay_fd, err) < 0) {
			berr_wrap(err, "instance %s", sb->name);
			goto fail;
		}
	}
	if (plan.wait_joined) {
		/* The instance assembles its root meanwhile: the grace period this
		 * write waits for passes in parallel. */
		if (cgroup_add_pid(p->cg, pid, err) < 0) {
			berr_wrap(err, "instance %s: cgroup", sb->name);
			goto fail;
		}
		if (sync_send_fd(sv[0], 'C', -1, err) < 0) {
			berr_wrap(err, "instance %s", sb->name);
			goto fail;
		}
	}
	if (sandbox_wait_exec(sv[0], p, err) < 0) {
		berr_wrap(err, "instance %s", sb->name);
		goto fail;
	}
	p->started_at = wall_ms();
	if (overlay_fd >= 0)
		close(overlay_fd);
	close(sv[0]);
	return 0;
fail:
	if (own_netns >= 0 && netns_leave(sb, &own_netns, NULL) < 0)
		_exit(125); /* cannot go on in the instance's network */
	if (overlay_fd >= 0)
		close(overlay_fd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	rootfs_close_binds(sb);
	if (p->tty_master >= 0) {
		close(p->tty_master);
		p->tty_master = -1;
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		if (!sb->clone_parent) /* else the parent's parent reaps it */
			waitpid(p->pid, NULL, 0);
		p->pid = -1;
	}
	struct berr e;
	bool oom;
	if (sandbox_finish(p, &oom, &e) < 0)
		log_debug("instance %s: undoing the failed start: %s", sb->name, e.msg);
	return -1;
}

int sandbox_finish(struct sandbox_proc *p, bool *oom_killed, struct berr *err)
{
	*oom_killed = false;
	if (!p->cg)
		return 0;
	*oom_killed = cgroup_oom_killed(p->cg);
	int rc = cgroup_kill_all(p->cg, err);
	if (rc == 0)
		rc = cgroup_destroy(p->cg, err);
	cgroup_free(p->cg);
	p->cg = NULL;
	return rc;
}
