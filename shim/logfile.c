#include "shim/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_log(struct logfile *lf, bool truncate, struct berr *err)
{
	lf->fd = openat(lf->dir_fd, "log",
			O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
			    (truncate ? O_TRUNC : 0),
			0640);
	if (lf->fd < 0)
		return berr_set(err, errno, "open log");
	struct stat st;
	if (fstat(lf->fd, &st) < 0)
		return berr_set(err, errno, "stat log");
	lf->size = st.st_size;
	return 0;
}

int logfile_open(struct logfile *lf, int dir_fd, int64_t max, struct berr *err)
{
	lf->dir_fd = dir_fd;
	lf->max = max > 0 ? max : LOGFILE_DEFAULT_MAX;
	return open_log(lf, false, err);
}

static int rotate(struct logfile *lf, struct berr *err)
{
	close(lf->fd);
	lf->fd = -1;
	if (renameat(lf->dir_fd, "log", lf->dir_fd, "log.1") < 0)
		return berr_set(err, errno, "rename log to log.1");
	return open_log(lf, true, err);
}

int logfile_write(struct logfile *lf, const void *buf, size_t n, struct berr *err)
{
	const char *p = buf;
	while (n) {
		if (lf->fd < 0 && open_log(lf, false, err) < 0)
			return -1;
		if (lf->size >= lf->max && rotate(lf, err) < 0)
			return -1;
		size_t room = (size_t)(lf->max - lf->size);
		size_t chunk = n < room ? n : room;
		ssize_t w = write(lf->fd, p, chunk);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return berr_set(err, errno, "write log");
		}
		p += w;
		n -= (size_t)w;
		lf->size += w;
	}
	return 0;
}

void logfile_close(struct logfile *lf)
{
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = -1;
}
