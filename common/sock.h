/* Unix sockets the processes listen on. */
#ifndef BERTH_SOCK_H
#define BERTH_SOCK_H

#include <sys/types.h>

#include "common/err.h"

/* A listening socket at path, with `mode` from the moment it exists (so
 * nobody else can connect in between), replacing a socket an earlier
 * process left there. flags are added to SOCK_CLOEXEC (SOCK_NONBLOCK).
 * `what` names it in errors: "control socket /run/berth/berthd.sock: ...".
 * A path longer than a socket address holds is bound through its
 * directory's descriptor (/proc/self/fd/N/name); clients reach it the same
 * way, or by a shorter path (a mount inside an instance).
 * The fd, or -1 with err. */
NODISCARD int unix_listen(const char *path, mode_t mode, int backlog, int flags, const char *what,
			  struct berr *err);
/* The same with another socket type (SOCK_SEQPACKET). */
NODISCARD int unix_listen_as(const char *path, int type, mode_t mode, int backlog, int flags,
			     const char *what, struct berr *err);

#endif
