#include "common/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
