/* The shim: one small process per detached instance. It starts the
 * instance, is its subreaper, forwards signals, writes its output to a
 * size-bounded log, and records its life in state.json. It keeps running
 * when the process that started it exits; a later daemon finds it again
 * through state.json (pid and start time) and a pidfd.
 *
 * Memory: the shim is forked from the caller, not exec'd. A fresh exec maps
 * and relocates berth and all its libraries again (about 1.1 MB resident
 * before doing anything); a forked copy holds only the pages it touches,
 * shared copy-on-write with its parent. The start itself (spec, seccomp
 * filter, cgroup, mounts) touches far more, so it runs in a short-lived
 * starter child that clones the instance with CLONE_PARENT: the instance is
 * the shim's own child, and the starter's pages go when it exits.
 *
 *   caller ─fork─► intermediate (setsid) ─fork─► shim ─fork─► starter
 *                   exits at once                 ▲            │ clone(CLONE_PARENT)
 *                                                 └─ parent of the instance
 *
 * The caller may have threads, so after fork the shim uses only what glibc
 * keeps usable in a forked child (malloc, its own code), never stdio locks
 * or dlopen, and closes every inherited descriptor first. */
#include "shim/shim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/pages.h"
#include "shim/exec.h"
#include "shim/foreground.h"
#include "shim/health.h"
#include "shim/instance.h"
#include "shim/logfile.h"
#include "shim/state.h"
#include "shim/syscalls.h"

#define REPORT_TIMEOUT_MS (120 * 1000)
#define SHIM_LOCK_FD	  3
#define DRAIN_TIMEOUT_MS  500
#define TRIM_AFTER_MS	  2000

/* What the shim tells shim_start(), in one write (atomic on a pipe). */
struct shim_report {
	char ok;
	int32_t pid;
	char msg[512];
};

struct shim {
	char dir[PATH_MAX];
	int dir_fd;
	struct instance_spec *spec;
	struct sandbox *sb;
	struct sandbox_proc p;
	struct logfile log;
	int log_r;
	int sfd;
	int tfd;
	bool stopping;
	struct instance_state st;
	struct exec_server exec;
	struct health_monitor health;
};

static void record(struct shim *s)
{
	struct berr err;
	if (state_write(s->dir, &s->st, &err) < 0)
		log_error("%s", err.msg);
}

static void report(int fd, bool ok, const char *msg)
{
	struct shim_report r;
	memset(&r, 0, sizeof(r));
	r.ok = ok ? 'O' : 'X';
	r.pid = (int32_t)getpid();
	if (msg)
		memcpy(r.msg, msg, strnlen(msg, sizeof(r.msg) - 1));
	ssize_t w = write(fd, &r, sizeof(r));
	(void)w;
	close(fd);
}

static void drain_log(struct shim *s, int timeout_ms)
{
	char buf[16384];
	for (;;) {
		struct pollfd pf = {.fd = s->log_r, .events = POLLIN};
		if (poll(&pf, 1, timeout_ms) <= 0)
			return;
		ssize_t n = read(s->log_r, buf, sizeof(buf));
		if (n <= 0)
			return;
		struct berr err;
		if (logfile_write(&s->log, buf, (size_t)n, &err) < 0)
			log_error("%s", err.msg);
	}
}

static void arm_stop_timer(struct shim *s, int grace)
{
	if (s->stopping)
		return;
	s->stopping = true;
	struct itimerspec its = {
	    .it_value = {.tv_sec = grace > 0 ? grace : 0, .tv_nsec = grace > 0 ? 0 : 1}};
	timerfd_settime(s->tfd, 0, &its, NULL);
}

static struct cgroup *instance_cgroup(struct shim *s);

static void kill_instance(struct shim *s)
{
	struct berr err;
	struct cgroup *cg = instance_cgroup(s);
	if (!cg)
		kill(s->p.pid, SIGKILL);
	else if (cgroup_kill_all(cg, &err) < 0)
		log_error("%s", err.msg);
}

/* A stop under way: no more checks, no new execs. */
static void begin_stop(struct shim *s, int grace)
{
	health_stop(&s->health);
	exec_server_close(&s->exec, s->dir_fd);
	arm_stop_timer(s, grace);
}

/* A check changed the instance's health: recorded, and with restartPolicy
 * on-unhealthy an unhealthy instance is stopped; its exit then tells the
 * daemon to start it again. */
static void health_changed(struct shim *s)
{
	health_to_state(&s->health, &s->st);
	if (s->st.health == HEALTH_UNHEALTHY && s->spec->health.stop_when_unhealthy &&
	    !s->stopping) {
		log_warn("unhealthy after %d failed checks: stopping (restartPolicy on-unhealthy)",
			 s->st.health_failing_streak);
		s->st.stopped_unhealthy = true;
		kill(s->p.pid, SIGTERM);
		begin_stop(s, s->spec->stop_grace_sec > 0 ? s->spec->stop_grace_sec : 10);
	}
	record(s);
}

/* Returns true once the module's pid 1 has exited (status filled). */
static bool handle_signals(struct shim *s, int *status)
{
	struct signalfd_siginfo si;
	bool exited = false;
	while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
				if (w == s->p.pid) {
					*status = st;
					exited = true;
				} else if (!exec_server_reaped(&s->exec, w, st) &&
					   health_reaped(&s->health, w, st) > 0) {
					health_changed(s);
				}
			}
			continue;
		}
		kill(s->p.pid, sig);
		if (sig == SIGTERM) {
			/* A stop: shim_stop() passes its grace period with the signal. */
			int grace = s->spec->stop_grace_sec > 0 ? s->spec->stop_grace_sec : 10;
			if (si.ssi_code == SI_QUEUE && si.ssi_int >= 0)
				grace = si.ssi_int;
			begin_stop(s, grace);
		}
	}
	return exited;
}

static void finish(struct shim *s, int status)
{
	drain_log(s, DRAIN_TIMEOUT_MS);
	logfile_close(&s->log);
	struct berr err;
	bool oom = false;
	instance_cgroup(s);
	if (sandbox_finish(&s->p, &oom, &err) < 0)
		snprintf(s->st.error, sizeof(s->st.error), "%s", err.msg);
	s->st.status = INSTANCE_EXITED;
	s->st.finished_at = wall_ms();
	s->st.exit_code = exit_status_of(status);
	s->st.exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	s->st.oom_killed = oom;
	/* Programs run by exec died with the cgroup: their clients hear so. */
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0)
		if (!exec_server_reaped(&s->exec, w, st))
			health_reaped(&s->health, w, st);
	health_stop(&s->health);
	exec_server_close(&s->exec, s->dir_fd);
	if (oom) {
		s->st.exit_code = 137;
		snprintf(s->st.error, sizeof(s->st.error),
			 "killed by the out-of-memory killer (memory limit %lld bytes)",
			 (long long)s->spec->memory);
	}
	/* Whoever reads "exited" may start the instance again at once: the
	 * lock goes first. */
	close(SHIM_LOCK_FD);
	record(s);
}

static int setup_process(struct shim *s, int keep1, int keep2)
{
	/* Nothing of the caller's survives: descriptors, signal handling. */
	int high1 = fcntl(keep1, F_DUPFD_CLOEXEC, 100);
	int high2 = fcntl(keep2, F_DUPFD_CLOEXEC, 100);
	if (high1 < 0 || high2 < 0 || dup2(high1, SHIM_LOCK_FD) < 0 || dup2(high2, 4) < 0)
		return -1;
	if (sys_close_range(5, ~0U, 0) < 0) {
		for (int fd = 5; fd < 65536; fd++)
			close(fd);
	}
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return -1;
	if (null > 2)
		close(null);
	fcntl(SHIM_LOCK_FD, F_SETFD, FD_CLOEXEC);
	fcntl(4, F_SETFD, FD_CLOEXEC);
	struct sigaction sa = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	umask(022);
	if (chdir("/") < 0)
		return -1;
	prctl(PR_SET_NAME, "berth-shim", 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#ifdef __GLIBC__
	malloc_trim(0); /* the caller's free heap pages */
#endif
	return 0;
}

/* What the starter tells the shim. */
struct start_result {
	char ok;
	int32_t pid;
	int64_t started_at;
	char msg[BERR_MSG_MAX];
};

static __attribute__((noreturn)) void starter_main(struct shim *s, int in, int log_w, int result_fd)
{
	struct start_result r;
	memset(&r, 0, sizeof(r));
	struct berr err;
	if (sandbox_from_spec(s->spec, s->dir, false, &s->sb, &err) == 0) {
		s->sb->stdio = SB_STDIO_FDS;
		s->sb->stdio_fds[0] = in;
		s->sb->stdio_fds[1] = log_w;
		s->sb->stdio_fds[2] = log_w;
		s->sb->clone_parent = true;
		if (sandbox_start(s->sb, &s->p, &err) == 0) {
			r.ok = 'O';
			r.pid = s->p.pid;
			r.started_at = s->p.started_at;
		}
	}
	if (r.ok != 'O')
		snprintf(r.msg, sizeof(r.msg), "%s", err.msg);
	ssize_t w = write(result_fd, &r, sizeof(r));
	/* Leaves without freeing: the cgroup and everything else stay with the
	 * instance, supervised by the shim. */
	_exit(w == (ssize_t)sizeof(r) ? 0 : 1);
}

/* Runs the starter and reads its result; reaps it. */
static int start_instance(struct shim *s, int in, int log_w, struct berr *err)
{
	int res[2];
	if (pipe2(res, O_CLOEXEC) < 0)
		return berr_set(err, errno, "instance %s: pipe", s->spec->name);
	pid_t t = fork();
	if (t < 0) {
		close(res[0]);
		close(res[1]);
		return berr_set(err, errno, "instance %s: fork", s->spec->name);
	}
	if (t == 0) {
		close(res[0]);
		starter_main(s, in, log_w, res[1]);
	}
	close(res[1]);
	struct start_result r;
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = read(res[0], (char *)&r + got, sizeof(r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(res[0]);
	while (waitpid(t, NULL, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(r))
		return berr_set(err, 0, "instance %s: the starter process died", s->spec->name);
	if (r.ok != 'O') {
		r.msg[sizeof(r.msg) - 1] = '\0';
		return berr_set(err, 0, "%s", r.msg);
	}
	s->p.pid = r.pid;
	s->p.started_at = r.started_at;
	return 0;
}

/* The instance's cgroup, opened when the shim first needs it. */
static struct cgroup *instance_cgroup(struct shim *s)
{
	struct berr err;
	if (!s->p.cg && cgroup_open(CGROUP_FS_ROOT, s->spec->name, &s->p.cg, &err) < 0)
		log_error("%s", err.msg);
	return s->p.cg;
}

/* Heap freed and code run by a burst of work (the start, an exec, a health
 * check) that the idle loop does not need. */
static void trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	pages_drop_file_mappings();
}

static __attribute__((noreturn)) void shim_main(struct shim *s, int lock_fd, int report_fd)
{
	struct berr err;
	if (setup_process(s, lock_fd, report_fd) < 0)
		_exit(125);
	report_fd = 4; /* the lock stays on SHIM_LOCK_FD until the instance is gone */
	char name[96];
	snprintf(name, sizeof(name), "shim %s", s->spec->name);
	log_set_name(name);

	s->st.status = INSTANCE_CREATED;
	s->st.shim_pid = getpid();
	s->st.shim_start_time = proc_start_time(getpid());
	record(s);

	sigset_t mask;
	sigemptyset(&mask);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&mask, sigs[i]);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int pipefd[2] = {-1, -1};
	/* stdin reads as empty, from a pipe nobody writes to: the host's
	 * /dev/null would hand the instance, through /proc/self/fd/0, a host
	 * inode it could chmod. */
	int in[2] = {-1, -1};
	if (s->sfd < 0 || s->tfd < 0 || s->dir_fd < 0 || pipe2(in, O_CLOEXEC) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0) {
		berr_set(&err, errno, "instance %s: shim setup", s->spec->name);
		goto failed;
	}
	if (logfile_open(&s->log, s->dir_fd, s->spec->log_max_bytes, &err) < 0)
		goto failed;
	s->log_r = pipefd[0];
	close(in[1]);
	int rc = start_instance(s, in[0], pipefd[1], &err);
	close(pipefd[1]);
	close(in[0]);
	if (rc < 0)
		goto failed;
	s->st.status = INSTANCE_RUNNING;
	s->st.pid = s->p.pid;
	s->st.started_at = s->p.started_at;
	if (exec_server_open(&s->exec, s->dir_fd, s->spec, s->dir, s->p.pid, &err) < 0)
		log_error("%s (berth exec cannot reach this instance)", err.msg);
	health_init(&s->health, s->spec, s->dir, s->p.pid);
	health_to_state(&s->health, &s->st);
	record(s);
	trim();
	report(report_fd, true, NULL);

	int status = 0;
	bool exited = false;
	int64_t trim_mono = 0; /* a burst of work (an exec, a check) ended: trim then */
	while (!exited) {
		/* The idle loop of an instance without checks or execs under way
		 * touches nothing but poll(): what it runs stays resident. */
		int64_t now = 0, next = INT64_MAX;
		if (s->health.next_mono || s->exec.open || trim_mono) {
			now = mono_ms();
			bool changed = false;
			pid_t checking = s->health.pid;
			next = health_tick(&s->health, now, &changed);
			if (changed)
				health_changed(s);
			if (s->health.pid != checking && !trim_mono)
				trim_mono = now + TRIM_AFTER_MS;
			if (trim_mono && now >= trim_mono) {
				trim();
				trim_mono = 0;
			}
			if (trim_mono && trim_mono < next)
				next = trim_mono;
			int64_t t = exec_server_sweep(&s->exec, now);
			if (t < next)
				next = t;
		}
		/* Filled entry by entry: an initializer would clear it all with a
		 * memset() call, one more page of libc for the idle loop. */
		struct pollfd pf[4 + EXEC_SESSIONS_MAX + 1];
		const int fixed[4] = {s->sfd, s->log_r, s->tfd, s->exec.listen_fd};
		for (size_t i = 0; i < 4; i++) {
			pf[i].fd = fixed[i];
			pf[i].events = POLLIN;
			pf[i].revents = 0;
		}
		size_t n = 4;
		size_t exec_at = n;
		if (s->exec.open)
			n += exec_server_poll(&s->exec, pf + n, ARRAY_SIZE(pf) - n);
		size_t health_at = n;
		if (s->health.out_fd >= 0)
			n += health_poll(&s->health, pf + n, ARRAY_SIZE(pf) - n);
		int64_t wait = next == INT64_MAX ? -1 : next - now;
		if (poll(pf, n, wait < 0 ? -1 : wait > INT32_MAX ? INT32_MAX : (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		bool exec_events = pf[3].revents != 0;
		for (size_t i = exec_at; i < health_at; i++)
			exec_events |= pf[i].revents != 0;
		if (exec_events) {
			if (!trim_mono)
				trim_mono = mono_ms() + TRIM_AFTER_MS;
			exec_server_events(&s->exec, pf + 3, 1);
			exec_server_events(&s->exec, pf + exec_at, health_at - exec_at);
		}
		if (health_at < n)
			health_events(&s->health, pf + health_at, n - health_at);
		if (pf[1].revents & (POLLIN | POLLHUP)) {
			char buf[16384];
			ssize_t got = read(s->log_r, buf, sizeof(buf));
			if (got > 0 && logfile_write(&s->log, buf, (size_t)got, &err) < 0)
				log_error("%s", err.msg);
			if (got == 0) {
				close(s->log_r);
				s->log_r = -1;
			}
		}
		if (pf[2].revents & POLLIN) {
			uint64_t ticks;
			if (read(s->tfd, &ticks, sizeof(ticks)) > 0)
				kill_instance(s);
		}
		if (pf[0].revents & POLLIN)
			exited = handle_signals(s, &status);
	}
	finish(s, status);
	_exit(0);

failed:
	if (s->log.fd >= 0)
		logfile_close(&s->log);
	/* A starter that died half-way may have left an instance (this
	 * process's child) and its cgroup behind. */
	if (instance_cgroup(s)) {
		struct berr e;
		bool oom;
		if (sandbox_finish(&s->p, &oom, &e) < 0)
			log_debug("%s", e.msg);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	s->st.status = INSTANCE_EXITED;
	s->st.exit_code = 127;
	s->st.finished_at = wall_ms();
	snprintf(s->st.error, sizeof(s->st.error), "%s", err.msg);
	close(SHIM_LOCK_FD);
	record(s);
	report(report_fd, false, err.msg);
	_exit(1);
}

static int read_report(int fd, struct shim_report *r, struct berr *err)
{
	size_t got = 0;
	while (got < sizeof(*r)) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int pr = poll(&pf, 1, REPORT_TIMEOUT_MS);
		if (pr == 0)
			return berr_set(err, ETIMEDOUT, "waiting for the shim");
		if (pr < 0 && errno != EINTR)
			return berr_set(err, errno, "waiting for the shim");
		if (pr < 0)
			continue;
		ssize_t n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return berr_set(err, n < 0 ? errno : 0, "the shim exited without a report");
		got += (size_t)n;
	}
	r->msg[sizeof(r->msg) - 1] = '\0';
	return 0;
}

int shim_start(const char *root, const struct instance_spec *spec, pid_t *shim_pid,
	       struct berr *err)
{
	*shim_pid = 0;
	if (instance_spec_validate(spec, err) < 0)
		return -1;
	struct shim s;
	memset(&s, 0, sizeof(s));
	s.log.fd = -1;
	s.log_r = -1;
	s.exec.listen_fd = -1;
	s.health.out_fd = -1;
	if (instance_dir_path(root, spec->name, s.dir, sizeof(s.dir), err) < 0)
		return -1;
	/* A stopped instance is started again in place: its upper layer (its
	 * writes) and its log are kept, as a container restart keeps them. */
	cleanup_close int lock = instance_lock(s.dir, spec->name, true, true, err);
	if (lock < 0)
		return -1;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/spec.json", s.dir);
	if (instance_spec_write(spec, path, err) < 0 ||
	    instance_files_prepare(s.dir, spec, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	s.spec = (struct instance_spec *)spec; /* the forked copy owns its memory */

	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return berr_set(err, errno, "instance %s: pipe", spec->name);
	pid_t mid = fork();
	if (mid < 0) {
		int e = errno;
		close(rep[0]);
		close(rep[1]);
		return berr_set(err, e, "instance %s: fork", spec->name);
	}
	if (mid == 0) {
		/* A session of its own, then a second fork: the shim is nobody's
		 * child once this intermediate exits, and can never regain a
		 * controlling terminal. */
		close(rep[0]);
		setsid();
		pid_t sp = fork();
		if (sp != 0)
			_exit(sp < 0 ? 1 : 0);
		shim_main(&s, lock, rep[1]);
	}
	close(rep[1]);
	int st;
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	struct shim_report r;
	int rc = read_report(rep[0], &r, err);
	close(rep[0]);
	if (rc < 0)
		return berr_wrap(err, "instance %s", spec->name);
	*shim_pid = r.pid;
	if (r.ok != 'O')
		return berr_set(err, 0, "%s", r.msg);
	return 0;
}

/* Waits up to ms for the shim to exit: on its pidfd, or, without pidfds
 * (Linux < 5.3), by looking at it every 10 ms. */
static bool wait_shim_gone(int pfd, const struct instance_state *st, int ms)
{
	if (pfd >= 0) {
		struct pollfd pf = {.fd = pfd, .events = POLLIN};
		return poll(&pf, 1, ms) > 0;
	}
	for (int waited = 0; waited < ms; waited += 10) {
		if (!shim_alive(st))
			return true;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !shim_alive(st);
}

/* Sends the shim SIGTERM carrying the grace period. 1 with *pidfd (the
 * shim's, or -1 on kernels without pidfds) and *st when it was sent, 0
 * when the shim is not running. */
static int stop_signal(const char *root, const char *name, int grace_sec, int *pidfd,
		       struct instance_state *st, struct berr *err)
{
	*pidfd = -1;
	if (shim_state_read(root, name, st, err) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!shim_alive(st))
		return 0;
	cleanup_close int pfd = sys_pidfd_open(st->shim_pid, 0);
	if (pfd < 0 && errno != ENOSYS)
		return errno == ESRCH ? 0 : berr_set(err, errno, "instance %s: pidfd", name);
	/* The pidfd pins the process; check it is still the same shim. (Without
	 * one the start time read next to the signal has to do.) */
	if (proc_start_time(st->shim_pid) != st->shim_start_time)
		return 0;
	if (grace_sec < 0)
		grace_sec = 0;
	int rc;
	if (pfd >= 0) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		si.si_signo = SIGTERM;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = grace_sec;
		rc = sys_pidfd_send_signal(pfd, SIGTERM, &si, 0);
	} else {
		rc = sigqueue(st->shim_pid, SIGTERM, (union sigval){.sival_int = grace_sec});
	}
	if (rc < 0)
		return errno == ESRCH ? 0
				      : berr_set(err, errno, "instance %s: signal the shim", name);
	*pidfd = take_fd(&pfd);
	return 1;
}

int shim_stop_request(const char *root, const char *name, int grace_sec, struct berr *err)
{
	int pfd;
	struct instance_state st;
	int rc = stop_signal(root, name, grace_sec, &pfd, &st, err);
	if (pfd >= 0)
		close(pfd);
	return rc < 0 ? -1 : 0;
}

int shim_stop(const char *root, const char *name, int grace_sec, struct berr *err)
{
	cleanup_close int pfd = -1;
	struct instance_state st;
	int rc = stop_signal(root, name, grace_sec, &pfd, &st, err);
	if (rc <= 0)
		return rc;
	if (grace_sec < 0)
		grace_sec = 0;
	if (wait_shim_gone(pfd, &st, (grace_sec + 1) * 1000))
		return 0;
	/* The shim kills at the end of the grace period; should it not, the
	 * whole cgroup goes from here. */
	struct cgroup *cg = NULL;
	struct berr e;
	if (cgroup_open(CGROUP_FS_ROOT, name, &cg, &e) == 0) {
		if (cgroup_kill_all(cg, &e) < 0)
			log_warn("instance %s: %s", name, e.msg);
		cgroup_free(cg);
	}
	if (wait_shim_gone(pfd, &st, 4000))
		return 0;
	return berr_set(err, ETIMEDOUT, "instance %s: the shim did not exit", name);
}

/* Kills whatever is left in the instance's cgroup and removes it; no
 * cgroup is not an error. */
static int instance_cgroup_remove(const char *name, struct berr *err)
{
	struct cgroup *cg = NULL;
	struct berr ignored;
	if (cgroup_open(CGROUP_FS_ROOT, name, &cg, &ignored) < 0)
		return 0;
	int rc = cgroup_kill_all(cg, err);
	if (rc == 0)
		rc = cgroup_destroy(cg, err);
	cgroup_free(cg);
	return rc < 0 ? berr_wrap(err, "instance %s", name) : 0;
}

int shim_remove(const char *root, const char *name, struct berr *err)
{
	char dir[PATH_MAX];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	struct stat sb;
	if (lstat(dir, &sb) < 0 && errno == ENOENT) {
		/* No directory; a cgroup may still be left from a crash. */
	} else {
		cleanup_close int lock = instance_lock(dir, name, false, false, err);
		if (lock < 0)
			return -1;
		if (instance_remove_files(root, name, err) < 0)
			return -1;
	}
	if (instance_cgroup_remove(name, err) < 0)
		return -1;
	return 0;
}

/* A directory nobody holds locked and without spec.json was left by a
 * foreground run (berth run --rm, berth oci run) that was killed before
 * it could clean up, or by a start that died before writing its spec:
 * its cgroup and the directory go. A directory changed in the last
 * min_age seconds is left alone, as it may be a start in progress. */
static int reclaim(const char *root, const char *name, int min_age, struct berr *err)
{
	char dir[PATH_MAX];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : berr_set(err, errno, "instance %s: open %s", name, dir);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK
			   ? 0
			   : berr_set(err, errno, "instance %s: lock %s", name, dir);
	struct stat st, spec;
	if (fstat(fd, &st) < 0)
		return berr_set(err, errno, "instance %s: stat %s", name, dir);
	if (st.st_nlink == 0 || fstatat(fd, "spec.json", &spec, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT)
		return 0;
	if (min_age > 0 && time(NULL) - st.st_mtime < min_age)
		return 0;
	if (instance_cgroup_remove(name, err) < 0)
		return -1;
	if (fs_remove_tree(dir, err) < 0)
		return berr_wrap(err, "instance %s", name);
	return 1;
}

int shim_reclaim(const char *root, const char *name, struct berr *err)
{
	return reclaim(root, name, 0, err);
}

#define RECLAIM_MIN_AGE_SEC 2

int shim_reclaim_all(const char *root, void (*fn)(const char *name, void *ctx), void *ctx,
		     struct berr *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/instances", root) >= (int)sizeof(path))
		return berr_set(err, ENAMETOOLONG, "%s/instances", root);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : berr_set(err, errno, "open %s", path);
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!instance_name_valid(de->d_name))
			continue;
		struct berr e;
		int r = reclaim(root, de->d_name, RECLAIM_MIN_AGE_SEC, &e);
		if (r > 0 && fn)
			fn(de->d_name, ctx);
		if (r < 0 && rc == 0) {
			if (err)
				*err = e;
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}
