/* Entering a running instance: a helper process forked from the shim
 * prepares everything it can on the host's side, joins the instance's
 * cgroup and namespaces, and clones the program's process into the
 * instance's pid namespace as the shim's child (CLONE_PARENT); that process
 * takes the instance's user, capabilities, no_new_privs and seccomp filter
 * exactly as the instance's pid 1 did (process_exec) and executes the
 * program.
 *
 *   shim ─fork─► helper: non-dumpable; closes the shim's descriptors; builds
 *                 │       the sandbox from the spec and the seccomp filter;
 *                 │       joins the cgroup; no library may load after this;
 *                 │       setns() into every namespace of the instance's pid 1
 *                 └─clone(CLONE_PARENT)─► program (pid namespace of the
 *                          instance): identity, privileges, exec
 *
 * What keeps it from leaving the instance (the CVE classes docs/ISOLATION.md
 * lists):
 * - descriptors: the helper keeps only the program's stdio and its report
 *   socket, and the program closes everything but stdio before exec; stdio
 *   are pipes or the instance's own terminal, never a host file or terminal
 *   (a host /dev/null reached through /proc/self/fd could be chmod'ed);
 * - working directory: joining the mount namespace moves root and cwd to the
 *   instance's root; the cwd is then entered and checked to be inside it
 *   (sandbox_enter_cwd, the class of CVE-2024-21626);
 * - the berth binary and ptrace (CVE-2019-5736, CVE-2016-9962): both
 *   processes are non-dumpable from before they join anything, so until the
 *   program is executed (which makes it dumpable again, as the module's own
 *   processes are) an instance process needs CAP_SYS_PTRACE in the host's
 *   user namespace to open its /proc/<pid>/exe, fd, mem or environ or to
 *   trace it: an instance given SYS_PTRACE (CapAdd, Privileged) could, as
 *   with runc and crun; an instance in a user namespace cannot;
 * - the helper itself never enters the instance's pid namespace (setns for a
 *   pid namespace only places its children there), so it is never visible
 *   inside. */
#include "shim/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/sock.h"
#include "common/lazy.h"
#include "common/strv.h"
#include "shim/sandbox.h"
#include "shim/syscalls.h"

void exec_request_clear(struct exec_request *r)
{
	strv_free_many(r->args, r->env);
	free_many(r->user, r->cwd);
	memset(r, 0, sizeof(*r));
}

static int request_str(yajl_val doc, const char *key, char **out, struct berr *err)
{
	const char *s = NULL;
	if (json_get_str(doc, key, "exec request", false, &s, err) < 0)
		return -1;
	if (!s)
		return 0;
	if (!s[0] || strlen(s) > EXEC_STR_MAX)
		return berr_set(err, 0, "exec request.%s: empty or longer than %d bytes", key,
				EXEC_STR_MAX);
	*out = strdup(s);
	return *out ? 0 : berr_set(err, ENOMEM, "exec request");
}

int exec_request_parse(const char *buf, size_t len, struct exec_request *r, struct berr *err)
{
	memset(r, 0, sizeof(*r));
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse_limited(buf, len, EXEC_REQUEST_MAX, 2 * EXEC_ARGS_MAX + 16, "exec request",
			       &doc, err) < 0)
		return -1;
	int rc = -1;
	if (!YAJL_IS_OBJECT(doc)) {
		berr_set(err, 0, "exec request: expected an object");
		goto out;
	}
	if (json_get_strv(doc, "args", "exec request", EXEC_ARGS_MAX, EXEC_STR_MAX, &r->args, err) <
		0 ||
	    json_get_strv(doc, "env", "exec request", EXEC_ARGS_MAX, EXEC_STR_MAX, &r->env, err) <
		0 ||
	    request_str(doc, "user", &r->user, err) < 0 ||
	    request_str(doc, "cwd", &r->cwd, err) < 0 ||
	    json_get_bool(doc, "tty", "exec request", false, &r->tty, err) < 0)
		goto out;
	if (!r->args || !r->args[0] || !r->args[0][0]) {
		berr_set(err, 0, "exec request: no command");
		goto out;
	}
	for (char **e = r->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e) {
			berr_set(err, 0,
				 "exec request: environment entry \"%.64s\" is not KEY=VALUE", *e);
			goto out;
		}
	}
	if (r->cwd && r->cwd[0] != '/') {
		berr_set(err, 0, "exec request: working directory \"%.64s\" is not absolute",
			 r->cwd);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		exec_request_clear(r);
	return rc;
}

int exec_request_json(const struct exec_request *r, char **out, size_t *len, struct berr *err)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return berr_set(err, ENOMEM, "exec request");
	int rc = yajl_gen_map_open(g) == yajl_gen_status_ok &&
			 json_gen_key_strv(g, "args", r->args) == 0 &&
			 json_gen_key_strv(g, "env", r->env) == 0 &&
			 (!r->user || json_gen_key_str(g, "user", r->user) == 0) &&
			 (!r->cwd || json_gen_key_str(g, "cwd", r->cwd) == 0) &&
			 json_gen_key_bool(g, "tty", r->tty) == 0 &&
			 yajl_gen_map_close(g) == yajl_gen_status_ok
		     ? 0
		     : -1;
	*out = json_gen_done_if(g, rc == 0, len);
	if (!*out)
		return berr_set(err, EINVAL, "exec request: arguments must be UTF-8 text");
	return 0;
}

int exec_status_of_error(const struct berr *err)
{
	if (strstr(err->msg, "exec ")) {
		if (err->code == ENOENT)
			return 127;
		if (err->code == EACCES || err->code == ENOEXEC || err->code == ETXTBSY ||
		    err->code == EISDIR || err->code == EPERM)
			return 126;
	}
	return 125;
}

/* --- the helper and the program --- */

/* What the helper tells the shim: 'P' with the program's pid as soon as it
 * exists (so a helper that stalls can be cleaned up after), then 'O' (with
 * the terminal's master side when there is one) or 'X' with the errno and
 * the message. */
struct exec_report {
	char tag;
	int32_t value;
	char msg[BERR_MSG_MAX];
};

static void report(int sock, char tag, int32_t value, const char *msg, int fd)
{
	struct exec_report r;
	memset(&r, 0, sizeof(r));
	r.tag = tag;
	r.value = value;
	if (msg)
		memcpy(r.msg, msg, strnlen(msg, sizeof(r.msg) - 1));
	ssize_t w = sock_send_with_fd(sock, &r, sizeof(r), fd, 0);
	(void)w;
}

/* Descriptors the helper keeps, at fixed numbers from 3 on; the rest of the
 * shim's are closed. */
enum { FD_IN = 3, FD_OUT, FD_ERR, FD_REPORT, FD_FIRST_FREE };

static int keep_only(const int stdio_fds[3], int rep, bool tty)
{
	int want[4] = {tty ? -1 : stdio_fds[0], tty ? -1 : stdio_fds[1], tty ? -1 : stdio_fds[2],
		       rep};
	int high[4];
	for (int i = 0; i < 4; i++) {
		high[i] = want[i] >= 0 ? fcntl(want[i], F_DUPFD_CLOEXEC, 100) : -1;
		if (want[i] >= 0 && high[i] < 0)
			return -1;
	}
	for (int i = 0; i < 4; i++) {
		if (high[i] < 0)
			continue;
		if (dup3(high[i], FD_IN + i, O_CLOEXEC) < 0)
			return -1;
	}
	if (sys_close_range(FD_FIRST_FREE, ~0U, 0) < 0)
		for (int fd = FD_FIRST_FREE; fd < 65536; fd++)
			close(fd);
	return 0;
}

static const struct {
	int flag;
	const char *name;
} namespaces[] = {
    /* Without pidfds, one at a time: the user namespace first (the others
     * belong to it), the mount namespace last (it changes what /proc is). */
    {CLONE_NEWUSER, "user"}, {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWIPC, "ipc"},
    {CLONE_NEWUTS, "uts"},   {CLONE_NEWNET, "net"},	  {CLONE_NEWPID, "pid"},
    {CLONE_NEWNS, "mnt"},
};

/* Every namespace of pid1: one setns() on a pidfd (Linux 5.8+), else each
 * /proc/<pid1>/ns/<name> file, all opened before the first is joined. */
static int join_namespaces(pid_t pid1, bool userns, struct berr *err)
{
	int all = 0;
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
		if (namespaces[i].flag != CLONE_NEWUSER || userns)
			all |= namespaces[i].flag;
	cleanup_close int pfd = sys_pidfd_open(pid1, 0);
	if (pfd >= 0) {
		if (setns(pfd, all) == 0)
			return 0;
		if (errno != EINVAL)
			return berr_set(err, errno, "join the namespaces of the instance (pid %d)",
					(int)pid1);
	}
	int fds[ARRAY_SIZE(namespaces)];
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
		fds[i] = -1;
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(namespaces) && rc == 0; i++) {
		if (!(all & namespaces[i].flag))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid1, namespaces[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			rc = berr_set(err, errno, "open %s", path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(namespaces) && rc == 0; i++)
		if (fds[i] >= 0 && setns(fds[i], namespaces[i].flag) < 0)
			rc = berr_set(err, errno, "join the %s namespace of the instance",
				      namespaces[i].name);
	for (size_t i = 0; i < ARRAY_SIZE(namespaces); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

static __attribute__((noreturn)) void program_main(struct sandbox *sb, int sync)
{
	struct berr err;
	berr_clear(&err);
	struct sb_child c = {.sync_fd = sync,
			     .root_mount_fd = -1,
			     .root_fd = -1,
			     .in_cgroup = true,
			     .cgroup_ns_done = true};
	if (setsid() < 0) {
		berr_set(&err, errno, "setsid");
		sandbox_child_fail(sync, &err);
	}
	if (sb->stdio == SB_STDIO_FDS)
		for (int i = 0; i < 3; i++)
			if (dup2(FD_IN + i, i) < 0) {
				berr_set(&err, errno, "stdio");
				sandbox_child_fail(sync, &err);
			}
	if (process_exec(sb, &c, &err) < 0)
		sandbox_child_fail(sync, &err);
	_exit(127);
}

/* The sandbox of the instance, with the request's program, environment,
 * user, directory and stdio. */
static int exec_sandbox(const struct instance_spec *spec, const char *dir,
			const struct exec_request *req, struct sandbox **out, struct berr *err)
{
	struct sandbox *sb = NULL;
	if (sandbox_from_spec(spec, dir, false, &sb, err) < 0)
		return -1;
	bool ok = true;
	strv_free(sb->args);
	sb->args = strv_dup(req->args, &ok);
	for (char **e = req->env; ok && e && *e; e++)
		ok = strv_env_set(&sb->env, *e) == 0;
	if (ok && req->tty && !strv_env_get(sb->env, "TERM"))
		ok = strv_env_set(&sb->env, "TERM=xterm") == 0;
	if (ok && req->user) {
		free(sb->user);
		sb->user = dup_or_null(req->user, &ok);
	}
	if (ok && req->cwd) {
		free(sb->cwd);
		sb->cwd = dup_or_null(req->cwd, &ok);
	}
	if (!ok) {
		sandbox_free(sb);
		return berr_set(err, ENOMEM, "exec");
	}
	sb->clone_flags = 0;
	sb->clone_parent = true;
	sb->stdio = req->tty ? SB_STDIO_TTY : SB_STDIO_FDS;
	*out = sb;
	return 0;
}

/* Everything up to the clone, from the host's side first. */
static int helper_enter(const struct instance_spec *spec, pid_t pid1, struct sandbox *sb,
			struct berr *err)
{
	/* The program sets its capabilities with libcap and loads the filter
	 * after the mount namespace changed, where no library may be opened. */
	if (lazy_require(LAZY_CAP, err) < 0)
		return -1;
	if (sb->seccomp == SB_SECCOMP_DEFAULT &&
	    seccomp_filter_default(sb->seccomp_caps, &sb->filter, err) < 0)
		return berr_wrap(err, "seccomp");
	struct cgroup *cg = NULL;
	if (cgroup_open(CGROUP_FS_ROOT, spec->name, &cg, err) < 0)
		return berr_wrap(err, "cgroup");
	int rc = cgroup_add_pid(cg, getpid(), err);
	cgroup_free(cg);
	if (rc < 0)
		return berr_wrap(err, "cgroup");
	lazy_seal("joining the instance's namespaces");
	if (join_namespaces(pid1, spec->userns, err) < 0)
		return -1;
	if (spec->userns &&
	    (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || setgroups(0, NULL) < 0))
		return berr_set(err, errno, "become root in the user namespace");
	return 0;
}

static __attribute__((noreturn)) void helper_main(const struct instance_spec *spec, const char *dir,
						  pid_t pid1, const struct exec_request *req,
						  const int stdio_fds[3], int rep)
{
	struct berr err;
	berr_clear(&err);
	/* Before anything else: nothing of the instance may read or trace this
	 * process or the program's until it has executed its program. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
	    keep_only(stdio_fds, rep, req->tty) < 0) {
		berr_set(&err, errno, "exec: set up the helper process");
		report(rep, 'X', err.code, err.msg, -1);
		_exit(1);
	}
	rep = FD_REPORT;
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sandbox *sb = NULL;
	int sv[2] = {-1, -1};
	if (exec_sandbox(spec, dir, req, &sb, &err) < 0 || helper_enter(spec, pid1, sb, &err) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		if (!err.msg[0])
			berr_set(&err, errno, "socketpair");
		report(rep, 'X', err.code, err.msg, -1);
		_exit(1);
	}
	/* A fork-like clone: the program becomes the shim's child, in the
	 * instance's pid namespace. */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		close(sv[0]);
		program_main(sb, sv[1]);
	}
	if (pid < 0) {
		berr_set(&err, errno, "exec: clone");
		report(rep, 'X', err.code, err.msg, -1);
		_exit(1);
	}
	close(sv[1]);
	report(rep, 'P', pid, NULL, -1);
	struct sandbox_proc p = {.pid = pid, .tty_master = -1};
	if (sandbox_wait_exec(sv[0], &p, &err) < 0) {
		report(rep, 'X', err.code, err.msg, -1);
		_exit(1);
	}
	report(rep, 'O', pid, NULL, p.tty_master);
	_exit(0);
}

/* Reads one report within the deadline; 0, or -1 when none came. */
static int read_report(int sock, int64_t deadline, struct exec_report *r, int *fd)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		struct pollfd pf = {.fd = sock, .events = POLLIN};
		int n = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		int received;
		ssize_t got = sock_recv_with_fd(sock, r, sizeof(*r), &received, 0);
		if (received >= 0 && got == (ssize_t)sizeof(*r) && fd && *fd < 0)
			*fd = received;
		else if (received >= 0)
			close(received);
		if (got != (ssize_t)sizeof(*r))
			return -1;
		r->msg[sizeof(r->msg) - 1] = '\0';
		return 0;
	}
}

int exec_start(const struct instance_spec *spec, const char *instance_dir, pid_t pid1,
	       const struct exec_request *req, const int stdio_fds[3], int timeout_ms,
	       struct exec_proc *out, struct berr *err)
{
	out->pid = -1;
	out->tty_master = -1;
	if (pid1 <= 0)
		return berr_set(err, 0, "instance %s is not running", spec->name);
	int rep[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rep) < 0)
		return berr_set(err, errno, "exec: socketpair");
	pid_t helper = fork();
	if (helper < 0) {
		int e = errno;
		close(rep[0]);
		close(rep[1]);
		return berr_set(err, e, "exec: fork");
	}
	if (helper == 0) {
		close(rep[0]);
		helper_main(spec, instance_dir, pid1, req, stdio_fds, rep[1]);
	}
	close(rep[1]);
	int64_t deadline = mono_ms() + timeout_ms;
	struct exec_report r;
	pid_t program = -1;
	int master = -1;
	int rc = -1;
	for (;;) {
		if (read_report(rep[0], deadline, &r, &master) < 0) {
			berr_set(err, 0, "exec: the instance was not entered within %d ms",
				 timeout_ms);
			break;
		}
		if (r.tag == 'P') {
			program = r.value;
			continue;
		}
		if (r.tag == 'O' && program > 0) {
			rc = 0;
			break;
		}
		berr_set(err, 0, "%s", r.msg[0] ? r.msg : "exec failed");
		err->code = r.value;
		break;
	}
	close(rep[0]);
	kill(helper, SIGKILL); /* gone already, unless it stalled */
	while (waitpid(helper, NULL, 0) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		if (master >= 0)
			close(master);
		/* A program that did not start is killed; its exit is reaped
		 * with the shim's other children. */
		if (program > 0)
			kill(program, SIGKILL);
		return -1;
	}
	out->pid = program;
	out->tty_master = master;
	return 0;
}
