/* `berth exec` on the caller's side: connects to the instance's exec
 * socket, hands the shim pipes for the program's stdio (or asks for a
 * terminal), and relays between them and its own stdio until the program
 * has exited. The program never gets one of the caller's descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/sock.h"
#include "shim/exec.h"
#include "shim/instance.h"
#include "shim/state.h"
#include "shim/terminal.h"

#define REPLY_WAIT_MS	(EXEC_START_MS + 5000)
#define OUTPUT_AFTER_MS 1000 /* output still read after the exit */

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static int connect_shim(const char *root, const char *name, struct berr *err)
{
	char dir[PATH_MAX];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	cleanup_close int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, errno == ENOENT ? 0 : errno, "no instance %s under %s", name,
				root);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" EXEC_SOCKET, dfd);
	cleanup_close int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berr_set(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != ENOENT && errno != ECONNREFUSED)
			return berr_set(err, errno, "instance %s: exec socket", name);
		struct instance_state st;
		struct berr e;
		bool running =
		    shim_state_read(root, name, &st, &e) == 0 && st.status == INSTANCE_RUNNING;
		return berr_set(err, 0, "instance %s is %s", name,
				running ? "stopping, or runs in the foreground (berth run) "
					  "without a shim to enter it"
					: "not running");
	}
	return take_fd(&fd);
}

static int send_request(int sock, const struct shim_exec_options *o, const int fds[3],
			struct berr *err)
{
	struct exec_request req = {.args = o->args,
				   .env = o->env,
				   .user = (char *)o->user,
				   .cwd = (char *)o->cwd,
				   .tty = o->tty};
	cleanup_free char *json = NULL;
	size_t len = 0;
	if (exec_request_json(&req, &json, &len, err) < 0)
		return -1;
	if (len > EXEC_REQUEST_MAX)
		return berr_set(err, E2BIG, "exec: the command and environment are over 64 KiB");
	char cbuf[CMSG_SPACE(3 * sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = {.iov_base = json, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (!o->tty) {
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
	}
	if (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
		return berr_set(err, errno, "exec: send the request");
	return 0;
}

/* One message from the shim (*fd: a descriptor it carried, else -1):
 * its length, 0 when the shim closed the connection, -1 on an error. */
static ssize_t receive(int sock, char *buf, size_t cap, int *fd)
{
	ssize_t n = sock_recv_with_fd(sock, buf, cap - 1, fd, 0);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* {"pid":N} (with the terminal), or the error the shim sent. */
static int read_start(int sock, int *master, int *status, struct berr *err)
{
	struct pollfd pf = {.fd = sock, .events = POLLIN};
	if (poll(&pf, 1, REPLY_WAIT_MS) <= 0)
		return berr_set(err, ETIMEDOUT, "exec: no answer from the shim");
	char buf[EXEC_MESSAGE_MAX + BERR_MSG_MAX];
	ssize_t n = receive(sock, buf, sizeof(buf), master);
	if (n <= 0)
		return berr_set(err, n < 0 ? errno : 0, "exec: the shim closed the connection");
	cleanup_yajl yajl_val v = NULL;
	if (json_parse(buf, (size_t)n, sizeof(buf), "exec answer", &v, err) < 0)
		return -1;
	const char *msg = json_str(json_get(v, "error"));
	if (msg) {
		long long code = 125;
		struct berr ignored;
		if (json_get_int(v, "status", "exec answer", false, &code, &ignored) < 0 ||
		    code < 125 || code > 127)
			code = 125;
		*status = (int)code;
		return berr_set(err, 0, "%s", msg);
	}
	if (!json_get(v, "pid"))
		return berr_set(err, 0, "exec: unexpected answer from the shim");
	return 0;
}

static void send_signal(int sock, int sig)
{
	char msg[32];
	int n = snprintf(msg, sizeof(msg), "{\"signal\":%d}", sig);
	ssize_t w = send(sock, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

/* Input on its way to the program, held while the program does not read. */
struct pending {
	char buf[16384];
	size_t len, off;
};

struct relay {
	int sock, sfd;
	int in_r;    /* the caller's stdin, -1 when not relayed or ended */
	int in_w;    /* the program's stdin pipe, or the terminal */
	int outs[2]; /* the program's stdout and stderr pipes, or the terminal */
	int dests[2];
	bool tty;
	struct pending p;
	bool exited;
	int status;
	int64_t exit_mono;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void stdin_ready(struct relay *r)
{
	ssize_t n = read(r->in_r, r->p.buf, sizeof(r->p.buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* End of input: the program's stdin ends too (a terminal stays). */
		r->in_r = -1;
		if (!r->tty)
			close_fd(&r->in_w);
		return;
	}
	r->p.len = (size_t)n;
	r->p.off = 0;
}

static void input_writable(struct relay *r)
{
	ssize_t w = write(r->in_w, r->p.buf + r->p.off, r->p.len - r->p.off);
	if (w < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (w < 0) {
		/* The program closed its stdin: nothing more to give it. */
		r->p.len = r->p.off = 0;
		r->in_r = -1;
		if (!r->tty)
			close_fd(&r->in_w);
		return;
	}
	r->p.off += (size_t)w;
	if (r->p.off == r->p.len)
		r->p.len = r->p.off = 0;
}

static void socket_ready(struct relay *r)
{
	char buf[EXEC_MESSAGE_MAX];
	ssize_t n = receive(r->sock, buf, sizeof(buf), NULL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	long long code = -1;
	cleanup_yajl yajl_val v = NULL;
	struct berr err;
	if (n > 0 && json_parse(buf, (size_t)n, sizeof(buf), "exec message", &v, &err) == 0 &&
	    json_get_int(v, "exit", "exec message", false, &code, &err) == 0 && code >= 0 &&
	    code <= 255)
		r->status = (int)code;
	else if (n > 0)
		return;
	else
		/* The shim went without a word: the instance stopped. */
		r->status = 137;
	r->exited = true;
	r->exit_mono = mono_ms();
	close_fd(&r->sock);
}

static void signal_ready(struct relay *r)
{
	struct signalfd_siginfo si;
	while (read(r->sfd, &si, sizeof(si)) == sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGWINCH) {
			if (r->tty)
				term_copy_winsize(STDIN_FILENO, r->in_w);
		} else if (sig != SIGPIPE && r->sock >= 0) {
			send_signal(r->sock, sig);
		}
	}
}

static void run_relay(struct relay *r)
{
	for (;;) {
		bool outputs = r->outs[0] >= 0 || r->outs[1] >= 0;
		int64_t left = 0;
		if (r->exited) {
			left = r->exit_mono + OUTPUT_AFTER_MS - mono_ms();
			if (!outputs || left <= 0)
				return;
		}
		struct pollfd pf[6] = {
		    {.fd = r->sock, .events = POLLIN},
		    {.fd = r->sfd, .events = POLLIN},
		    {.fd = r->p.len ? -1 : r->in_r, .events = POLLIN},
		    {.fd = r->p.len ? r->in_w : -1, .events = POLLOUT},
		    {.fd = r->outs[0], .events = POLLIN},
		    {.fd = r->outs[1], .events = POLLIN},
		};
		if (poll(pf, 6, r->exited ? (int)left : -1) < 0 && errno != EINTR)
			return;
		if (pf[1].revents)
			signal_ready(r);
		if (pf[2].revents)
			stdin_ready(r);
		if (pf[3].revents)
			input_writable(r);
		for (int i = 0; i < 2; i++)
			if (pf[4 + i].revents && term_relay(r->outs[i], r->dests[i]) <= 0) {
				if (r->outs[i] == r->in_w)
					r->in_w = -1; /* the terminal: one descriptor for both */
				close_fd(&r->outs[i]);
			}
		if (pf[0].revents)
			socket_ready(r);
	}
}

int shim_exec(const char *root, const char *name, const struct shim_exec_options *o, int *status,
	      struct berr *err)
{
	*status = 125;
	cleanup_close int sock = connect_shim(root, name, err);
	if (sock < 0)
		return -1;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (!o->tty &&
	    (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			close_fd(&in[i]);
			close_fd(&out[i]);
			close_fd(&errp[i]);
		}
		return berr_set(err, e, "exec: pipe");
	}
	const int fds[3] = {in[0], out[1], errp[1]};
	int rc = send_request(sock, o, fds, err);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	int master = -1;
	if (rc == 0)
		rc = read_start(sock, &master, status, err);
	if (rc < 0) {
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&errp[0]);
		return -1;
	}
	sigset_t mask, old;
	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&mask, forwarded[i]);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, &old);
	struct relay r = {
	    .sock = sock, .sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), .tty = o->tty};
	struct term_mode mode = {.raw = false};
	if (o->tty) {
		r.in_w = master;
		r.outs[0] = master;
		r.outs[1] = -1;
		if (isatty(STDIN_FILENO)) {
			term_copy_winsize(STDIN_FILENO, master);
			if (o->interactive)
				term_make_raw(STDIN_FILENO, &mode);
		}
	} else {
		r.in_w = in[1];
		r.outs[0] = out[0];
		r.outs[1] = errp[0];
	}
	r.dests[0] = STDOUT_FILENO;
	r.dests[1] = STDERR_FILENO;
	if (o->interactive) {
		r.in_r = STDIN_FILENO;
		fcntl(r.in_w, F_SETFL, fcntl(r.in_w, F_GETFL) | O_NONBLOCK);
	} else {
		r.in_r = -1;
		if (!o->tty)
			close_fd(&r.in_w);
	}
	run_relay(&r);
	term_restore(STDIN_FILENO, &mode);
	if (r.in_w >= 0 && r.in_w != r.outs[0])
		close(r.in_w);
	close_fd(&r.outs[0]);
	close_fd(&r.outs[1]);
	if (r.sfd >= 0)
		close(r.sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	sock = r.sock; /* closed by socket_ready once the exit came */
	*status = r.status;
	return 0;
}
