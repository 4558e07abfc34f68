/* The last steps of the instance process, after pivot_root: who it runs as,
 * what it may do, and the exec of the module's program. */
#include "shim/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/sock.h"
#include "common/fs.h"
#include "common/strv.h"
#include "shim/syscalls.h"
#include "shim/user.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Reads an image file for user lookup. The lookup refuses magic links
 * (/etc/passwd -> /proc/self/fd/N would read one of berth's descriptors)
 * and anything but a regular file. NULL when the image has none. */
static int read_image_file(const char *path, char **out, struct berr *err)
{
	*out = NULL;
	cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berr_set(err, errno, "open /");
	cleanup_close int fd = fs_open_in_root(root, path, O_RDONLY | O_NONBLOCK, 0, NULL);
	if (fd < 0)
		return errno == ENOENT ? 0 : berr_set(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berr_set(err, errno, "stat %s", path);
	if (!S_ISREG(st.st_mode))
		return berr_set(err, 0, "%s is not a regular file", path);
	char name[32];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	return fs_read_file(name, USER_FILE_MAX, out, NULL, err) < 0 ? berr_wrap(err, "%s", path)
								     : 0;
}

static int resolve_user(struct sandbox *sb, struct berr *err)
{
	if (sb->ids_given)
		return 0;
	cleanup_free char *passwd = NULL;
	cleanup_free char *group = NULL;
	if (read_image_file("/etc/passwd", &passwd, err) < 0 ||
	    read_image_file("/etc/group", &group, err) < 0)
		return -1;
	struct user_ids ids;
	if (user_resolve(sb->user, passwd, group, &ids, err) < 0)
		return -1;
	sb->uid = ids.uid;
	sb->gid = ids.gid;
	free(sb->groups);
	sb->groups = NULL;
	sb->n_groups = 0;
	if (ids.n_groups) {
		sb->groups = calloc(ids.n_groups, sizeof(gid_t));
		if (!sb->groups)
			return berr_set(err, ENOMEM, "groups");
		memcpy(sb->groups, ids.groups, ids.n_groups * sizeof(gid_t));
		sb->n_groups = ids.n_groups;
	}
	if (sb->set_home && !strv_env_get(sb->env, "HOME")) {
		char kv[300];
		snprintf(kv, sizeof(kv), "HOME=%s", ids.home);
		if (strv_env_set(&sb->env, kv) < 0)
			return berr_set(err, ENOMEM, "environment");
	}
	return 0;
}

int sync_send_fd(int sock, char tag, int fd, struct berr *err)
{
	if (sock_send_with_fd(sock, &tag, 1, fd, 0) < 0)
		return berr_set(err, errno, "send to the parent");
	return 0;
}

/* A terminal from the instance's own devpts: the module gets the slave as
 * its controlling terminal, the parent the master to relay. */
static int setup_tty(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	cleanup_close int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return berr_set(err, errno, "open /dev/pts/ptmx");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return berr_set(err, errno, "unlock the terminal");
	cleanup_close int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0)
		return berr_set(err, errno, "open the terminal");
	if (fchown(slave, sb->uid, (gid_t)-1) < 0)
		return berr_set(err, errno, "chown the terminal");
	if (sync_send_fd(c->sync_fd, 'T', master, err) < 0)
		return -1;
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return berr_set(err, errno, "make the terminal controlling");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return berr_set(err, errno, "dup2 terminal");
	return 0;
}

/* Every descriptor but stdio and the sync socket is closed before chdir and
 * exec: a directory descriptor left open would let a working directory
 * like /proc/self/fd/N lead outside the root (CVE-2024-21626). */
static int close_other_fds(int keep, struct berr *err)
{
	if (keep > 3 && sys_close_range(3, (unsigned)keep - 1, 0) < 0 && errno != ENOSYS)
		return berr_set(err, errno, "close_range");
	if (sys_close_range((unsigned)keep + 1, ~0U, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return berr_set(err, errno, "close_range");
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return berr_set(err, errno, "list /proc/self/fd");
	int dfd = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (fd > 2 && fd != keep && fd != dfd)
			close(fd);
	}
	closedir(d);
	return 0;
}

int sandbox_enter_cwd(const char *cwd, struct berr *err)
{
	if (chdir(cwd) < 0)
		return berr_set(err, errno, "working directory %s", cwd);
	/* The kernel reports a directory outside the root as "(unreachable)"
	 * (glibc then fails with ENOENT): it must be inside the root. */
	char real[PATH_MAX];
	if (!getcwd(real, sizeof(real)) || real[0] != '/')
		return berr_set(err, 0, "working directory %s is outside the instance's root", cwd);
	return 0;
}

static int reset_signals(struct berr *err)
{
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		return berr_set(err, errno, "sigprocmask");
	struct sigaction sa = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL); /* invalid numbers fail; harmless */
	return 0;
}

static int switch_ids(struct sandbox *sb, struct berr *err)
{
	/* Keep the permitted set across the uid change; caps_apply() then
	 * sets exactly the capabilities the instance gets. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return berr_set(err, errno, "PR_SET_KEEPCAPS");
	if (setgroups(sb->n_groups, sb->groups) < 0)
		return berr_set(err, errno, "setgroups");
	if (setresgid(sb->gid, sb->gid, sb->gid) < 0)
		return berr_set(err, errno, "setgid %u", (unsigned)sb->gid);
	if (setresuid(sb->uid, sb->uid, sb->uid) < 0)
		return berr_set(err, errno, "setuid %u", (unsigned)sb->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return berr_set(err, errno, "PR_SET_KEEPCAPS");
	return 0;
}

static int load_seccomp(struct sandbox *sb, struct berr *err)
{
	return sb->filter ? seccomp_filter_load(sb->filter, err) : 0;
}

/* execvpe() searches the caller's PATH; the module's PATH is the one that
 * counts. The error kept is the most telling one, as shells report it. */
static int exec_program(struct sandbox *sb, struct berr *err)
{
	const char *prog = sb->args[0];
	if (strchr(prog, '/')) {
		execve(prog, sb->args, sb->env);
		return berr_set(err, errno, "exec %s", prog);
	}
	const char *path = strv_env_get(sb->env, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	int saved = ENOENT;
	for (const char *p = path;;) {
		size_t len = strcspn(p, ":");
		char full[PATH_MAX];
		if (snprintf(full, sizeof(full), "%.*s%s%s", (int)len, p, len ? "/" : "", prog) <
		    (int)sizeof(full)) {
			execve(full, sb->args, sb->env);
			if (errno == EACCES || errno == ENOEXEC || errno == ETXTBSY)
				saved = errno;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
				return berr_set(err, errno, "exec %s", full);
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	if (saved == ENOENT) {
		berr_set(err, 0, "exec %s: not found in PATH %s", prog, path);
		err->code = ENOENT;
		return -1;
	}
	return berr_set(err, saved, "exec %s", prog);
}

int process_exec(struct sandbox *sb, struct sb_child *c, struct berr *err)
{
	if (resolve_user(sb, err) < 0)
		return berr_wrap(err, "user");
	if (sb->stdio == SB_STDIO_TTY && setup_tty(sb, c, err) < 0)
		return -1;
	for (size_t i = 0; i < sb->n_rlimits; i++)
		if (setrlimit(sb->rlimits[i].resource, &sb->rlimits[i].limit) < 0)
			return berr_set(err, errno, "setrlimit %d", sb->rlimits[i].resource);
	if (sb->oom_score_adj_set) {
		char v[16];
		int n = snprintf(v, sizeof(v), "%d", sb->oom_score_adj);
		cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, v, (size_t)n) != n)
			return berr_set(err, errno, "oom_score_adj %d", sb->oom_score_adj);
	}
	if (sb->umask_set)
		umask(sb->umask);
	if (close_other_fds(c->sync_fd, err) < 0 ||
	    sandbox_enter_cwd(sb->cwd ? sb->cwd : "/", err) < 0 || reset_signals(err) < 0)
		return -1;
	/* Without no_new_privs the filter must go in while CAP_SYS_ADMIN is
	 * still held. */
	if (!sb->no_new_privs && load_seccomp(sb, err) < 0)
		return berr_wrap(err, "seccomp");
	if (switch_ids(sb, err) < 0 || caps_apply(&sb->caps, err) < 0)
		return -1;
	/* Credential changes clear the parent-death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return berr_set(err, errno, "PR_SET_PDEATHSIG");
	if (sb->no_new_privs) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			return berr_set(err, errno, "PR_SET_NO_NEW_PRIVS");
		if (load_seccomp(sb, err) < 0)
			return berr_wrap(err, "seccomp");
	}
	char go = 'E';
	if (send(c->sync_fd, &go, 1, MSG_NOSIGNAL) < 0)
		return berr_set(err, errno, "send to the parent");
	return exec_program(sb, err);
}
