#include "common/sock.h"

#include <errno.h>
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
	if (strlen(path) >= sizeof(sa.sun_path))
		return berr_set(err, ENAMETOOLONG, "%s %s", what, path);
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return berr_set(err, errno, "%s %s", what, path);
	/* The processes that listen are single-threaded: the umask can be
	 * borrowed for the bind. */
	mode_t old = umask(~mode & 0777);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		return berr_set(err, e, "%s %s", what, path);
	}
	return fd;
}
