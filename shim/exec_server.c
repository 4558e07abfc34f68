/* The shim's exec socket: `berth exec` connects, sends its request with the
 * program's stdio, and gets the program's pid, then its exit status (the
 * protocol is in exec.h). Every connection has a slot of a fixed table, so
 * clients cannot make the shim grow; the shim never blocks on a client. */
#include "shim/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sock.h"
#include "shim/foreground.h"

int exec_server_open(struct exec_server *es, int dir_fd, const struct instance_spec *spec,
		     const char *dir, pid_t pid1, struct berr *err)
{
	memset(es, 0, sizeof(*es));
	es->listen_fd = -1;
	es->spec = spec;
	es->dir = dir;
	es->pid1 = pid1;
	for (size_t i = 0; i < EXEC_SESSIONS_MAX; i++)
		es->s[i].fd = -1;
	/* Through the directory's descriptor: a socket path may not be longer
	 * than 107 bytes, an instance directory may. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/" EXEC_SOCKET, dir_fd);
	int fd = unix_listen_as(path, SOCK_SEQPACKET, 0600, 8, SOCK_NONBLOCK, "exec socket", err);
	if (fd < 0)
		return berr_wrap(err, "instance %s", spec->name);
	es->listen_fd = fd;
	return 0;
}

void exec_server_close(struct exec_server *es, int dir_fd)
{
	if (es->listen_fd < 0)
		return;
	close(es->listen_fd);
	es->listen_fd = -1;
	if (dir_fd >= 0)
		unlinkat(dir_fd, EXEC_SOCKET, 0);
}

static void send_json(int fd, yajl_gen g, int pass_fd)
{
	size_t len = 0;
	cleanup_free char *text = json_gen_done_if(g, g != NULL, &len);
	if (!text)
		return;
	/* A client that does not take a message of a few bytes loses it. */
	ssize_t w = sock_send_with_fd(fd, text, len, pass_fd, MSG_DONTWAIT);
	(void)w;
}

static yajl_gen message(const char *key, long long value)
{
	yajl_gen g = json_gen_new(false);
	if (g &&
	    (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_key_int(g, key, value) < 0 ||
	     yajl_gen_map_close(g) != yajl_gen_status_ok)) {
		yajl_gen_free(g);
		g = NULL;
	}
	return g;
}

static void send_error(int fd, const char *msg, int status)
{
	yajl_gen g = json_gen_new(false);
	if (g &&
	    (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_key_str(g, "error", msg) < 0 ||
	     json_gen_key_int(g, "status", status) < 0 ||
	     yajl_gen_map_close(g) != yajl_gen_status_ok)) {
		yajl_gen_free(g);
		g = NULL;
	}
	send_json(fd, g, -1);
}

/* Closes the connection; the slot is free once the program is reaped too. */
static void session_end(struct exec_server *es, struct exec_session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->deadline = 0;
	if (!s->pid && es->open)
		es->open--;
}

static void accept_one(struct exec_server *es)
{
	int fd = accept4(es->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!sock_peer_is_root(fd)) {
		send_error(fd, "permission denied: exec is for root only", 125);
		close(fd);
		return;
	}
	for (size_t i = 0; i < EXEC_SESSIONS_MAX; i++) {
		struct exec_session *s = &es->s[i];
		if (s->fd < 0 && !s->pid) {
			s->fd = fd;
			s->deadline = mono_ms() + EXEC_REQUEST_MS;
			es->open++;
			return;
		}
	}
	send_error(fd, "too many exec sessions in this instance; try again", 125);
	close(fd);
}

/* Receives one message and up to three descriptors (closed here unless
 * the caller takes them): its length, 0 at end of file, -1 when nothing is
 * there yet or on an error (errno). */
static ssize_t receive(int fd, char *buf, size_t cap, int fds[3], size_t *nfds)
{
	char cbuf[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	*nfds = 0;
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			if (*nfds < 3)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	if (n > 0 && (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		errno = EMSGSIZE;
		return -2;
	}
	return n;
}

static void start_program(struct exec_server *es, struct exec_session *s, const char *buf,
			  size_t len, const int fds[3], size_t nfds)
{
	struct exec_request req;
	struct berr err;
	if (exec_request_parse(buf, len, &req, &err) < 0) {
		send_error(s->fd, err.msg, 125);
		session_end(es, s);
		return;
	}
	if (!req.tty && nfds != 3) {
		send_error(s->fd,
			   "exec request: three descriptors (stdin, stdout, stderr) expected", 125);
		exec_request_clear(&req);
		session_end(es, s);
		return;
	}
	struct exec_proc p;
	int rc = exec_start(es->spec, es->dir, es->pid1, &req, fds, EXEC_START_MS, &p, &err);
	if (rc < 0) {
		log_warn("exec %s: %s", req.args[0], err.msg);
		send_error(s->fd, err.msg, exec_status_of_error(&err));
		exec_request_clear(&req);
		session_end(es, s);
		return;
	}
	exec_request_clear(&req);
	s->pid = p.pid;
	s->deadline = 0;
	send_json(s->fd, message("pid", p.pid), p.tty_master);
	if (p.tty_master >= 0)
		close(p.tty_master);
}

static void session_ready(struct exec_server *es, struct exec_session *s)
{
	char buf[EXEC_REQUEST_MAX];
	int fds[3] = {-1, -1, -1};
	size_t nfds = 0;
	ssize_t n = receive(s->fd, buf, s->pid ? EXEC_MESSAGE_MAX : sizeof(buf), fds, &nfds);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && !s->pid) {
		start_program(es, s, buf, (size_t)n, fds, nfds);
	} else if (n > 0) {
		/* {"signal":N} for the program. */
		cleanup_yajl yajl_val v = NULL;
		struct berr err;
		long long sig = 0;
		if (json_parse(buf, (size_t)n, EXEC_MESSAGE_MAX, "exec message", &v, &err) == 0 &&
		    json_get_int(v, "signal", "exec message", true, &sig, &err) == 0 && sig > 0 &&
		    sig < NSIG)
			kill(s->pid, (int)sig);
	} else {
		if (n < 0 && !s->pid)
			send_error(s->fd, "exec request larger than 64 KiB", 125);
		/* The client is gone: so is its program. */
		if (s->pid) {
			kill(-s->pid, SIGKILL);
			kill(s->pid, SIGKILL);
		}
		session_end(es, s);
	}
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

size_t exec_server_poll(struct exec_server *es, struct pollfd *pf, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < EXEC_SESSIONS_MAX && n < cap; i++)
		if (es->s[i].fd >= 0)
			pf[n++] = (struct pollfd){.fd = es->s[i].fd, .events = POLLIN};
	return n;
}

void exec_server_events(struct exec_server *es, const struct pollfd *pf, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (!pf[k].revents)
			continue;
		if (pf[k].fd == es->listen_fd) {
			accept_one(es);
			continue;
		}
		for (size_t i = 0; i < EXEC_SESSIONS_MAX; i++)
			if (es->s[i].fd >= 0 && es->s[i].fd == pf[k].fd) {
				session_ready(es, &es->s[i]);
				break;
			}
	}
}

bool exec_server_reaped(struct exec_server *es, pid_t pid, int status)
{
	for (size_t i = 0; i < EXEC_SESSIONS_MAX; i++) {
		struct exec_session *s = &es->s[i];
		if (!s->pid || s->pid != pid)
			continue;
		if (s->fd >= 0)
			send_json(s->fd, message("exit", exit_status_of(status)), -1);
		s->pid = 0;
		if (s->fd < 0 && es->open)
			es->open--; /* its client had gone before */
		else
			session_end(es, s);
		return true;
	}
	return false;
}

int64_t exec_server_sweep(struct exec_server *es, int64_t now)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < EXEC_SESSIONS_MAX; i++) {
		struct exec_session *s = &es->s[i];
		if (s->fd < 0 || s->pid || !s->deadline)
			continue;
		if (now >= s->deadline) {
			send_error(s->fd, "no exec request within 5 s", 125);
			session_end(es, s);
		} else if (s->deadline < next) {
			next = s->deadline;
		}
	}
	return next;
}
