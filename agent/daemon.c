/* `berth daemon --config FILE`: started by init, runs until SIGTERM. One
 * thread on one epoll loop: signals (through a self-pipe, so children start
 * with a clean signal state), the CLI socket, a pidfd per shim, and a
 * timeout that is the next reconcile, backoff expiry or token refresh. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/network.h"
#include "agent/metrics.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/pages.h"
#include "oci/oci.h"

/* Memory is given back this long after a burst of work (requests, starts,
 * exits), once the daemon idles again. */
#define TRIM_AFTER_MS 2000

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

static int sig_write_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t w = write(sig_write_fd, &c, 1);
	(void)w;
	errno = saved;
}

void daemon_watch_fd(struct daemon *d, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = ((uint64_t)tag << 32) | (uint32_t)fd};
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		log_error("epoll: fd %d: %s", fd, strerror(errno));
}

void daemon_unwatch_fd(struct daemon *d, int fd)
{
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

pid_t daemon_spawn(char *const argv[], int out_fd, int err_fd, int pass_fd, bool hup_blocked)
{
	/* Signals wait until the child has default handlers: the daemon's
	 * handler there would write to the daemon's own signal pipe. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0) {
		int e = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		errno = e;
		return pid;
	}
	/* Child: default signal handling, and gone when the daemon is. */
	int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGUSR1};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	sigset_t mask;
	sigemptyset(&mask);
	if (hup_blocked)
		sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(126);
	if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
		_exit(126);
	if (pass_fd >= 0 && dup2(pass_fd, 3) < 0) /* dup2 clears FD_CLOEXEC */
		_exit(126);
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0 && devnull != STDIN_FILENO) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}
	execv(argv[0], argv);
	_exit(127);
}

int send_bounded(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	int64_t deadline = boot_ms() + timeout_ms;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		int64_t left = deadline - boot_ms();
		if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || left <= 0)
			return -1;
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		poll(&pf, 1, (int)left);
	}
	return 0;
}

/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET ('@' is the
 * abstract namespace). */
static void notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
		log_warn("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

static int setup_signals(struct daemon *d, struct berr *err)
{
	if (pipe2(d->sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return berr_set(err, errno, "signal pipe");
	sig_write_fd = d->sigpipe[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return berr_set(err, errno, "sigaction");
	signal(SIGPIPE, SIG_IGN);
	daemon_watch_fd(d, d->sigpipe[0], TAG_SIGNAL);
	return 0;
}

static void reap_children(struct daemon *d)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		if (pid == d->hub.pid)
			hubproc_exited(d, status);
		else if (!identities_child_exited(d, pid, status))
			pull_child_exited(d, pid, status);
	}
}

static void handle_signals(struct daemon *d)
{
	unsigned char buf[64];
	ssize_t n;
	while ((n = read(d->sigpipe[0], buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			switch (buf[i]) {
			case SIGTERM:
			case SIGINT:
				d->stopping = true;
				break;
			case SIGHUP:
				log_info("SIGHUP: reloading the deployment file");
				deployment_reload(d);
				break;
			case SIGCHLD:
				reap_children(d);
				break;
			case SIGUSR1:
				cloud_wake(d);
				break;
			}
		}
	}
}

static void pidfd_ready(struct daemon *d, int fd)
{
	/* A descriptor closed earlier in the same batch of events matches no
	 * module (or, reused, one whose shim is alive): nothing to do then. */
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i]->pidfd == fd) {
			module_shim_exited(d, d->mods[i]);
			return;
		}
}

static int64_t earlier(int64_t a, int64_t b)
{
	return b < a ? b : a;
}

static int timeout_ms(struct daemon *d)
{
	int64_t now = boot_ms();
	int64_t next = d->next_reconcile_boot;
	next = earlier(next, reconcile_next_deadline(d));
	next = earlier(next, workload_sweep(d, now));
	next = earlier(next, edge_next_deadline(d));
	next = earlier(next, control_sweep(d, now));
	next = earlier(next, identities_next_deadline(d));
	next = earlier(next, cloud_next_deadline(d));
	next = earlier(next, metrics_sweep(d, now));
	if (d->cfg->hub_enabled && d->hub.pid <= 0 && d->hub.listen_fd >= 0 &&
	    d->hub.next_start_boot < next)
		next = d->hub.next_start_boot;
	if (d->trim_boot && d->trim_boot < next)
		next = d->trim_boot;
	if (d->reconcile_due || next <= now)
		return 0;
	return next - now > 60000 ? 60000 : (int)(next - now);
}

/* Between bursts of work the daemon idles, for days: it gives back the
 * heap it freed and the file pages (code) only the burst used. */
static void trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	pages_drop_file_mappings();
}

static void loop(struct daemon *d)
{
	while (!d->stopping) {
		struct epoll_event evs[16];
		int n = epoll_wait(d->epfd, evs, 16, timeout_ms(d));
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);
			int fd = (int)(uint32_t)evs[i].data.u64;
			switch (tag) {
			case TAG_SIGNAL:
				handle_signals(d);
				break;
			case TAG_CONTROL:
				control_accept(d);
				break;
			case TAG_CLIENT:
				control_client_ready(d, fd);
				break;
			case TAG_PIDFD:
				pidfd_ready(d, fd);
				break;
			case TAG_WORKLOAD:
				workload_accept(d, fd);
				break;
			case TAG_WCLIENT:
				workload_client_ready(d, fd);
				break;
			case TAG_METRICS:
				metrics_accept(d);
				break;
			case TAG_MCLIENT:
				metrics_client_ready(d, fd);
				break;
			case TAG_MHUB:
				metrics_hub_ready(d, fd);
				break;
			}
		}
		if (d->stopping)
			break;
		int64_t now = boot_ms();
		bool busy = n > 0 || d->reconcile_due || reconcile_next_deadline(d) <= now;
		if (busy || now >= d->next_reconcile_boot) {
			reconcile(d);
			d->next_reconcile_boot = boot_ms() + d->cfg->reconcile_interval_ms;
		}
		edge_tick(d);
		hubproc_tick(d);
		cloud_tick(d);
		if (busy && !d->trim_boot)
			d->trim_boot = boot_ms() + TRIM_AFTER_MS;
		else if (d->trim_boot && boot_ms() >= d->trim_boot) {
			trim();
			d->trim_boot = 0;
		}
	}
}

static int prepare_dirs(struct daemon *d, struct berr *err)
{
	char agent[4200];
	snprintf(agent, sizeof(agent), "%s/agent", d->root);
	/* <run>/shared is what every instance sees at /run/berth; module/ in it
	 * is where each instance's own directory is mounted. */
	char shared[4200];
	snprintf(shared, sizeof(shared), "%s/" SHARED_DIR "/module", d->run);
	if (fs_mkdir_p(d->root, 0755, err) < 0 || fs_mkdir_p(agent, 0700, err) < 0 ||
	    fs_mkdir_p(d->run, 0755, err) < 0 || fs_mkdir_p(shared, 0755, err) < 0)
		return -1;
	return 0;
}

/* One daemon per state directory: a second one would take over the sockets
 * and start every module again. The lock goes with the process. */
static int lock_root(struct daemon *d, struct berr *err)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/agent/lock", d->root);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berr_set(err, errno, "%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return berr_set(err, 0,
					"another berth daemon is running with state directory %s",
					d->root);
		return berr_set(err, e, "lock %s", path);
	}
	return 0; /* fd stays open (and locked) until the daemon exits */
}

/* A daemon killed in the middle of an atomic write leaves its temporary
 * file ("<name>.tmp<pid>"); the next one removes them. */
static void remove_stale_temporaries(const char *dir)
{
	cleanup_closedir DIR *dh = opendir(dir);
	struct dirent *e;
	while (dh && (e = readdir(dh))) {
		const char *t = strstr(e->d_name, ".tmp");
		if (t && t != e->d_name && t[4] && strspn(t + 4, "0123456789") == strlen(t + 4) &&
		    unlinkat(dirfd(dh), e->d_name, 0) == 0)
			log_info("removed %s/%s, left by an interrupted write", dir, e->d_name);
	}
}

static int daemon_main(struct daemon *d)
{
	struct berr err;
	if (prepare_dirs(d, &err) < 0 || lock_root(d, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	char agent[4200];
	snprintf(agent, sizeof(agent), "%s/agent", d->root);
	remove_stale_temporaries(agent);
	remove_stale_temporaries(d->run);
	cleanup_free char *boot_id = NULL;
	size_t len = 0;
	if (fs_read_file("/proc/sys/kernel/random/boot_id", 64, &boot_id, &len, &err) == 0)
		snprintf(d->boot_id, sizeof(d->boot_id), "%.*s", (int)strcspn(boot_id, "\n"),
			 boot_id);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0 || setup_signals(d, &err) < 0) {
		log_error("%s", d->epfd < 0 ? strerror(errno) : err.msg);
		return 1;
	}
	if (oci_store_open(d->root, &d->store, &err) < 0) {
		log_error("image store: %s", err.msg);
		return 1;
	}
	if (records_load(d, &err) < 0)
		log_error("module records: %s (starting without them)", err.msg);
	if (network_load(d, &err) < 0)
		log_error("module networks: %s", err.msg);
	if (deployment_initial(d, &err) < 0)
		log_error("%s", err.msg);
	if (!d->dep)
		log_info("no deployment yet: waiting for berth deploy%s",
			 d->cfg->deployment_file ? " or a valid deployment file" : "");
	reattach_all(d);
	network_sweep(d);
	if (edge_setup(d, &err) < 0)
		log_error("%s (modules cannot verify the gateway)", err.msg);
	d->hub.listen_fd = -1;
	if (d->cfg->hub_enabled && hubproc_setup(d, &err) < 0)
		log_error("hub: %s", err.msg);
	if (control_listen(d, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (d->cfg->metrics_listen && metrics_listen(d, &err) < 0)
		log_error("%s (no metrics)", err.msg);
	hubproc_tick(d);
	d->reconcile_due = true;
	d->next_reconcile_boot = boot_ms();
	log_info("berth daemon %s ready: device %s, root %s, run %s", BERTH_VERSION,
		 d->cfg->device_id, d->root, d->run);
	notify("READY=1");
	loop(d);
	notify("STOPPING=1");
	log_info("stopping%s",
		 d->cfg->stop_modules_on_exit ? " modules" : "; modules keep running");
	if (d->cfg->stop_modules_on_exit)
		stop_all(d);
	else
		stop_pending(d);
	hubproc_shutdown(d);
	char path[4300];
	snprintf(path, sizeof(path), "%s/" CONTROL_SOCKET, d->run);
	unlink(path);
	log_info("stopped");
	return 0;
}

static int cmd_daemon(struct berth_ctx *ctx, int argc, char **argv)
{
	const char *config;
	if (agent_config_option(argc, argv, &config) < 0)
		return berth_usage("daemon");
	log_set_name("berth daemon");
#ifdef __GLIBC__
	/* A fixed threshold: large buffers (a manifest, its parse) are mapped
	 * and unmapped, instead of glibc raising the threshold after the first
	 * one and keeping the next ones in the heap for good. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
	struct daemon d = {.control_fd = -1, .metrics_fd = -1, .epfd = -1};
	d.started_boot = boot_ms();
	struct berr err;
	if (agent_config_load(config, &d.cfg, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	d.config_path = (char *)config;
	/* The config's directories win; else the command line's (or defaults). */
	snprintf(d.root, sizeof(d.root), "%s", d.cfg->root ? d.cfg->root : ctx->root);
	snprintf(d.run, sizeof(d.run), "%s", d.cfg->run ? d.cfg->run : ctx->run);
	int rc = daemon_main(&d);
	for (size_t i = 0; i < d.n_mods; i++)
		free(d.mods[i]);
	free(d.mods);
	network_free(&d);
	deployment_free(d.dep);
	identities_free(&d);
	cloud_free(&d);
	if (d.store)
		oci_store_close(d.store);
	agent_config_free(d.cfg);
	return rc;
}
BERTH_COMMAND(daemon, "daemon [--config FILE]",
	      "run the runtime: deployments, modules, hub (started by init)", cmd_daemon);
