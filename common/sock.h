/* Unix sockets the processes listen on. */
#ifndef BERTH_SOCK_H
#define BERTH_SOCK_H

#include <stdbool.h>
#include <sys/socket.h>
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
/* A numeric TCP address to listen on: "127.0.0.1:9600", "[::1]:9600", or
 * ":9600" for every IPv4 address. No name lookup (the daemon maps no
 * resolver). 0, or -1 when it is none of these. */
int tcp_address_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len);
/* A listening TCP socket on such an address (SO_REUSEADDR); flags as for
 * unix_listen(). */
NODISCARD int tcp_listen(const char *address, int backlog, int flags, const char *what,
			 struct berr *err);

/* One sendmsg() of buf, with fd passed along (SCM_RIGHTS) when it is not
 * -1; MSG_NOSIGNAL is added to flags. What sendmsg() returns. */
ssize_t sock_send_with_fd(int sock, const void *buf, size_t len, int fd, int flags);
/* One recvmsg() of at most len bytes into buf, again when a signal
 * interrupts it; MSG_CMSG_CLOEXEC is added to flags. *fd gets the
 * descriptor passed along (SCM_RIGHTS), else -1; with fd NULL a passed
 * descriptor is closed. What recvmsg() returns. */
ssize_t sock_recv_with_fd(int sock, void *buf, size_t len, int *fd, int flags);
/* Whether the process at the other end of the unix socket fd runs as root
 * (SO_PEERCRED); false when that cannot be told. */
bool sock_peer_is_root(int fd);
/* The same with another socket type (SOCK_SEQPACKET). */
NODISCARD int unix_listen_as(const char *path, int type, mode_t mode, int backlog, int flags,
			     const char *what, struct berr *err);

#endif
