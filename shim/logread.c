/* Reading an instance's log for `berth logs` and support bundles: the lines
 * a query selects, their stamps removed unless asked for, the last N of
 * them, and with follow what the shim appends afterwards, across rotation
 * and truncation (the daemon is not involved). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strbuf.h"
#include "shim/instance.h"
#include "shim/logfile.h"

#define LOG_READ_MAX	(64 * 1024 * 1024)
#define FOLLOW_PAUSE_US (200 * 1000)

struct sink {
	int fd;
	struct strbuf *buf; /* gathered first when lines are counted from the end */
	int error;
};

static void emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	if (s->error)
		return;
	if (s->buf) {
		if (strbuf_append(s->buf, p, n) < 0)
			s->error = errno;
		return;
	}
	while (n) {
		ssize_t w = write(s->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->error = w < 0 ? errno : EIO;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* The start of the last `lines` lines of text. */
static size_t tail_start(const char *text, size_t len, long lines)
{
	if (lines < 0)
		return 0;
	if (lines == 0)
		return len;
	size_t end = len && text[len - 1] == '\n' ? len - 1 : len;
	long counted = 0;
	for (size_t i = end; i-- > 0;)
		if (text[i] == '\n' && ++counted == lines)
			return i + 1;
	return 0;
}

/* Feeds what fd holds from *pos on through the filter. */
static void feed_from(int fd, off_t *pos, struct log_filter *f, struct sink *s)
{
	char buf[65536];
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), *pos);
		if (n <= 0)
			return;
		log_filter_feed(f, buf, (size_t)n, emit, s);
		*pos += n;
	}
}

static void follow(const char *path, off_t pos, struct log_filter *f, struct sink *s)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) < 0) {
		close(fd);
		fd = -1;
	}
	while (!s->error) {
		if (fd >= 0) {
			if (fstat(fd, &st) == 0 && st.st_size < pos)
				pos = 0; /* truncated */
			feed_from(fd, &pos, f, s);
		}
		struct stat now;
		if (stat(path, &now) == 0 && (fd < 0 || now.st_ino != st.st_ino)) {
			/* Rotated: the rest of the old file, then the new one. */
			if (fd >= 0) {
				feed_from(fd, &pos, f, s);
				close(fd);
			}
			fd = open(path, O_RDONLY | O_CLOEXEC);
			pos = 0;
			if (fd >= 0 && fstat(fd, &st) < 0) {
				close(fd);
				fd = -1;
			}
			continue;
		}
		usleep(FOLLOW_PAUSE_US);
	}
	if (fd >= 0)
		close(fd);
}

int shim_logs(const char *root, const char *name, const struct shim_log_query *q, int out_fd,
	      struct berr *err)
{
	char dir[PATH_MAX], older[PATH_MAX + 8], current[PATH_MAX + 8];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	if (access(dir, F_OK) < 0)
		return berr_set(err, 0, "no instance %s under %s", name, root);
	snprintf(older, sizeof(older), "%s/log.1", dir);
	snprintf(current, sizeof(current), "%s/log", dir);
	struct log_filter f;
	log_filter_init(&f, q->since_ns, q->until_ns, q->timestamps);
	struct strbuf shown = STRBUF_INIT;
	shown.max = 2 * LOG_READ_MAX;
	struct sink s = {.fd = out_fd, .buf = q->tail >= 0 ? &shown : NULL};
	off_t seen = 0;
	const char *files[] = {older, current};
	for (size_t i = 0; i < 2; i++) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		struct berr ignored;
		if (fs_read_file(files[i], LOG_READ_MAX, &text, &len, &ignored) < 0)
			continue;
		log_filter_feed(&f, text, len, emit, &s);
		if (i == 1)
			seen = (off_t)len;
	}
	if (s.buf) {
		s.buf = NULL;
		size_t start = tail_start(shown.buf, shown.len, q->tail);
		emit(&s, shown.buf + start, shown.len - start);
		strbuf_release(&shown);
	}
	if (!s.error && q->follow)
		follow(current, seen, &f, &s);
	if (s.error && s.error != EPIPE)
		return berr_set(err, s.error, "instance %s: write the log", name);
	return 0;
}
