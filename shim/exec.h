/* Private to shim/: a program run in a running instance, by the instance's shim: `berth exec`
 * (the shim's exec socket, exec_server.c) and health checks (health.c).
 *
 * The shim, not the CLI, enters the instance: it holds the spec the
 * instance was started with (user, environment, capabilities, seccomp),
 * and the instance's pid 1 is its own child, so the namespaces it joins
 * cannot belong to a process that took a reused pid. The program is the
 * shim's child too: the shim reaps it, reports its exit status, and kills it
 * with the rest of the instance's cgroup when the instance goes. */
#ifndef BERTH_SHIM_EXEC_H
#define BERTH_SHIM_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "shim/shim.h"

#define EXEC_SOCKET	 "exec.sock" /* in the instance directory, 0600, root only */
#define EXEC_REQUEST_MAX (64 * 1024) /* one request message */
#define EXEC_ARGS_MAX	 1024	     /* arguments, environment entries */
#define EXEC_STR_MAX	 4096	     /* one argument, variable, user or path */
#define EXEC_START_MS	 (10 * 1000) /* entering the instance and exec */

struct exec_request {
	char **args; /* required; args[0] looked up in the instance's PATH */
	char **env;  /* "K=V", over the instance's environment */
	char *user;  /* "uid[:gid]" or "name[:group]"; NULL: the instance's user */
	char *cwd;   /* NULL: the instance's working directory */
	bool tty;    /* a terminal of the instance's devpts */
};

void exec_request_clear(struct exec_request *r);
/* The request as `berth exec` sends it: {"args":[...],"env":[...],
 * "user":"u","cwd":"/d","tty":true}. Bounded: EXEC_REQUEST_MAX bytes,
 * EXEC_ARGS_MAX entries of EXEC_STR_MAX bytes; args required. */
NODISCARD int exec_request_parse(const char *buf, size_t len, struct exec_request *r,
				 struct berr *err);
NODISCARD int exec_request_json(const struct exec_request *r, char **out, size_t *len,
				struct berr *err);

struct exec_proc {
	pid_t pid;	/* the program's process, a child of the caller */
	int tty_master; /* req->tty: the master side of its terminal, else -1 */
};

/* Runs req in the instance whose pid 1 (pid1) is the caller's child: joins
 * its namespaces, cgroup, root, user, capabilities, no_new_privs and
 * seccomp filter, as the instance's own process was given them, with
 * stdio_fds as 0, 1 and 2 (unless req->tty). Returns once the program has
 * been executed, or -1 with err saying why it could not be (err->code
 * ENOENT: not found, EACCES/ENOEXEC: cannot be executed), within timeout_ms. */
NODISCARD int exec_start(const struct instance_spec *spec, const char *instance_dir, pid_t pid1,
			 const struct exec_request *req, const int stdio_fds[3], int timeout_ms,
			 struct exec_proc *out, struct berr *err);

/* The exit status a shell would give for a failed start: 127 not found,
 * 126 cannot be executed, 125 anything else. */
int exec_status_of_error(const struct berr *err);

/* The shim's exec socket (exec_server.c). Protocol, one message each on a
 * SOCK_SEQPACKET connection from root:
 *   client -> shim   the request (exec_request_parse) with, unless it asks
 *                    for a terminal, three descriptors for the program's
 *                    stdin, stdout and stderr (pipes the client relays)
 *   shim -> client   {"pid":N}, with the terminal's master side when asked
 *                    for one; or {"error":"...","status":125|126|127}
 *   client -> shim   {"signal":N}, forwarded to the program (any number)
 *   shim -> client   {"exit":N} once the program has exited (N as a shell
 *                    reports it), then the connection closes
 * A client that goes away takes its program with it (SIGKILL to the
 * program's process group). */
#define EXEC_SESSIONS_MAX 8
#define EXEC_REQUEST_MS	  5000 /* a connection has this long to send its request */
#define EXEC_MESSAGE_MAX  256  /* messages after the request */

struct exec_session {
	int fd;		  /* the connection; -1 once gone */
	pid_t pid;	  /* the program; 0 before it runs */
	int64_t deadline; /* monotonic ms: the request is due; 0 once it came */
};

struct exec_server {
	int listen_fd; /* -1: not listening */
	size_t open;   /* slots in use */
	const struct instance_spec *spec;
	const char *dir;
	pid_t pid1;
	struct exec_session s[EXEC_SESSIONS_MAX];
};

/* Listens on EXEC_SOCKET in the instance directory dir_fd (mode 0600). */
NODISCARD int exec_server_open(struct exec_server *es, int dir_fd, const struct instance_spec *spec,
			       const char *dir, pid_t pid1, struct berr *err);
/* Stops listening and removes the socket (dir_fd: the instance directory);
 * sessions are answered as their programs exit. */
void exec_server_close(struct exec_server *es, int dir_fd);
/* The sessions' descriptors to wait on (the listening socket is the
 * caller's to add), written to pf (at most cap); their count. */
size_t exec_server_poll(struct exec_server *es, struct pollfd *pf, size_t cap);
/* Handles what poll() reported on the descriptors exec_server_poll() gave. */
void exec_server_events(struct exec_server *es, const struct pollfd *pf, size_t n);
/* A child of the shim exited: true when it was a program of a session. */
bool exec_server_reaped(struct exec_server *es, pid_t pid, int status);
/* Closes connections that sent no request in time; the next deadline
 * (monotonic ms, INT64_MAX when none). */
int64_t exec_server_sweep(struct exec_server *es, int64_t now);

#endif
