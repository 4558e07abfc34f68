#include "common/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unix_listen(const char *path, mode_t mode, int backlog, int flags, const char *what,
		struct berr *err)
{
	return unix_listen_as(path, SOCK_STREAM, mode, backlog, flags, what, err);
}

int unix_listen_as(const char *path, int type, mode_t mode, int backlog, int flags,
		   const char *what, struct berr *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/* A path longer than sun_path is reached through its directory's
	 * descriptor: /proc/self/fd/<dir>/<name>. */
	int dirfd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		const char *slash = strrchr(path, '/');
		char dir[4096];
		if (!slash || (size_t)(slash - path) >= sizeof(dir))
			return berr_set(err, ENAMETOOLONG, "%s %s", what, path);
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return berr_set(err, errno, "%s %s", what, dir);
		int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd,
				 slash + 1);
		if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
			close(dirfd);
			return berr_set(err, ENAMETOOLONG, "%s %s", what, path);
		}
	} else {
		strcpy(sa.sun_path, path);
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | flags, 0);
	if (fd < 0) {
		int e = errno;
		if (dirfd >= 0)
			close(dirfd);
		return berr_set(err, e, "%s %s", what, path);
	}
	/* The processes that listen are single-threaded: the umask can be
	 * borrowed for the bind. */
	mode_t old = umask(~mode & 0777);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (dirfd >= 0)
		close(dirfd);
	if (rc < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		return berr_set(err, e, "%s %s", what, path);
	}
	return fd;
}

int tcp_address_parse(const char *s, struct sockaddr_storage *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	const char *colon = strrchr(s, ':');
	if (!colon || !colon[1] || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	long port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -1;
	char host[64];
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	if (hl && inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -1;
	if (!hl)
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	return 0;
}

int tcp_listen(const char *address, int backlog, int flags, const char *what, struct berr *err)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (tcp_address_parse(address, &sa, &len) < 0)
		return berr_set(err, 0, "%s %s: expected IP:PORT, [IPv6]:PORT or :PORT", what,
				address);
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return berr_set(err, e, "%s %s", what, address);
	}
	return fd;
}

ssize_t sock_send_with_fd(int sock, const void *buf, size_t len, int fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &m, MSG_NOSIGNAL | flags);
}

ssize_t sock_recv_with_fd(int sock, void *buf, size_t len, int *fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	int got = -1;
	struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len >= CMSG_LEN(sizeof(int)))
		memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (fd)
		*fd = got;
	else if (got >= 0)
		close(got);
	return n;
}

bool sock_peer_is_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}
