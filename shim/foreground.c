/* Running an instance in the foreground (`berth run`, `berth oci run`):
 * stdio passed through (or a terminal relayed when stdin is one), signals
 * forwarded, the exit status returned as a shell would report it. */
#include "shim/foreground.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strv.h"
#include "shim/terminal.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int sandbox_run_foreground(struct sandbox *sb, struct foreground_result *res, struct berr *err)
{
	memset(res, 0, sizeof(*res));
	bool tty = isatty(STDIN_FILENO);
	if (tty) {
		sb->stdio = SB_STDIO_TTY;
		if (!strv_env_get(sb->env, "TERM") && strv_env_set(&sb->env, "TERM=xterm") < 0)
			return berr_set(err, ENOMEM, "environment");
	}
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGPIPE);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
		return berr_set(err, errno, "sigprocmask");
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return berr_set(err, errno, "signalfd");
	}
	struct sandbox_proc p;
	if (sandbox_start(sb, &p, err) < 0) {
		close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return -1;
	}
	res->pid = p.pid;

	struct term_mode mode = {.raw = false};
	if (p.tty_master >= 0) {
		term_copy_winsize(STDIN_FILENO, p.tty_master);
		term_make_raw(STDIN_FILENO, &mode);
	}
	int status = 0;
	int interrupts = 0;
	bool stdin_open = p.tty_master >= 0;
	bool exited = false;
	while (!exited) {
		struct pollfd pf[3] = {{.fd = sfd, .events = POLLIN},
				       {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
				       {.fd = p.tty_master, .events = POLLIN}};
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (term_relay(p.tty_master, STDOUT_FILENO) <= 0) {
				close(p.tty_master);
				p.tty_master = -1;
			}
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (term_relay(STDIN_FILENO, p.tty_master) <= 0)
				stdin_open = false;
		}
		if (!(pf[0].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			int sig = (int)si.ssi_signo;
			if (sig == SIGCHLD) {
				pid_t w;
				while ((w = waitpid(-1, &status, WNOHANG)) > 0)
					if (w == p.pid)
						exited = true;
			} else if (sig == SIGWINCH) {
				if (p.tty_master >= 0)
					term_copy_winsize(STDIN_FILENO, p.tty_master);
			} else if (sig == SIGPIPE) {
				continue;
			} else if ((sig == SIGINT || sig == SIGTERM) && ++interrupts > 1) {
				/* A module that ignores the first one (pid 1 without a
				 * handler does) is killed on the second. */
				kill(p.pid, SIGKILL);
			} else {
				kill(p.pid, sig);
			}
		}
	}
	if (p.tty_master >= 0) {
		/* Output the module wrote just before exiting. */
		term_drain(p.tty_master, STDOUT_FILENO);
		close(p.tty_master);
	}
	term_restore(STDIN_FILENO, &mode);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	res->status = status;
	res->exit_code = exit_status_of(status);
	res->started_at = p.started_at;
	if (sandbox_finish(&p, &res->oom_killed, err) < 0)
		log_warn("instance %s: %s", sb->name, err->msg);
	if (res->oom_killed)
		res->exit_code = 137;
	return 0;
}
