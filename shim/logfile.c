#include "shim/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int open_log(struct logfile *lf, bool truncate, struct berr *err)
{
	lf->fd = openat(
	    lf->dir_fd, "log",
	    O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
	if (lf->fd < 0)
		return berr_set(err, errno, "open log");
	struct stat st;
	if (fstat(lf->fd, &st) < 0)
		return berr_set(err, errno, "stat log");
	lf->size = st.st_size;
	/* A log that ends inside a line (an earlier shim's) goes on with it. */
	char last = '\n';
	lf->at_line_start =
	    st.st_size == 0 || pread(lf->fd, &last, 1, st.st_size - 1) != 1 || last == '\n';
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

/* Appends bytes, rotating when the log is full (within a line too long to
 * fit a log of its own). */
static int write_raw(struct logfile *lf, const char *p, size_t n, struct berr *err)
{
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

/* Output gathered into few writes: one per arrival, not one per line. */
struct out {
	char buf[32768];
	size_t len;
};

static int flush(struct logfile *lf, struct out *o, struct berr *err)
{
	int rc = write_raw(lf, o->buf, o->len, err);
	o->len = 0;
	return rc;
}

static int add(struct logfile *lf, struct out *o, const char *p, size_t n, struct berr *err)
{
	while (n) {
		if (o->len == sizeof(o->buf) && flush(lf, o, err) < 0)
			return -1;
		size_t k = sizeof(o->buf) - o->len < n ? sizeof(o->buf) - o->len : n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
	}
	return 0;
}

int logfile_write_at(struct logfile *lf, const void *buf, size_t n, int64_t when_ns,
		     struct berr *err)
{
	char stamp[LOG_STAMP_LEN + 1];
	log_stamp_format(when_ns, stamp);
	struct out o;
	o.len = 0;
	const char *p = buf;
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t len = nl ? (size_t)(nl - p) + 1 : n;
		if (lf->at_line_start) {
			/* A line that would not fit goes whole into a new log. */
			int64_t now = lf->size + (int64_t)o.len;
			if (now > 0 && now + LOG_STAMP_LEN + (int64_t)len > lf->max &&
			    (flush(lf, &o, err) < 0 || (lf->fd >= 0 && rotate(lf, err) < 0)))
				return -1;
			if (add(lf, &o, stamp, LOG_STAMP_LEN, err) < 0)
				return -1;
		}
		if (add(lf, &o, p, len, err) < 0)
			return -1;
		lf->at_line_start = nl != NULL;
		p += len;
		n -= len;
	}
	return flush(lf, &o, err);
}

int logfile_write(struct logfile *lf, const void *buf, size_t n, struct berr *err)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return logfile_write_at(lf, buf, n, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, err);
}

void logfile_close(struct logfile *lf)
{
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = -1;
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian); the shim
 * stamps every line without gmtime_r(), which takes the time zone lock. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static void put(char *p, int64_t v, int width)
{
	for (int i = width; i-- > 0; v /= 10)
		p[i] = (char)('0' + v % 10);
}

void log_stamp_format(int64_t when_ns, char out[LOG_STAMP_LEN + 1])
{
	if (when_ns < 0)
		when_ns = 0;
	int64_t secs = when_ns / 1000000000LL, days = secs / 86400, rest = secs % 86400;
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	memcpy(out, "0000-00-00T00:00:00.000000000Z ", LOG_STAMP_LEN + 1);
	put(out, y % 10000, 4);
	put(out + 5, m, 2);
	put(out + 8, d, 2);
	put(out + 11, rest / 3600, 2);
	put(out + 14, rest / 60 % 60, 2);
	put(out + 17, rest % 60, 2);
	put(out + 20, when_ns % 1000000000LL, 9);
}

static bool digits(const char *p, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

int log_stamp_parse(const char *p, size_t n, int64_t *when_ns)
{
	int y, mo, d, h, mi, s, ns;
	if (n < LOG_STAMP_LEN || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' ||
	    p[16] != ':' || p[19] != '.' || p[29] != 'Z' || p[30] != ' ' || !digits(p, 4, &y) ||
	    !digits(p + 5, 2, &mo) || !digits(p + 8, 2, &d) || !digits(p + 11, 2, &h) ||
	    !digits(p + 14, 2, &mi) || !digits(p + 17, 2, &s) || !digits(p + 20, 9, &ns) ||
	    mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return -1;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = s};
	*when_ns = (int64_t)timegm(&tm) * 1000000000LL + ns;
	return 0;
}

void log_filter_init(struct log_filter *f, int64_t since_ns, int64_t until_ns, bool timestamps)
{
	memset(f, 0, sizeof(*f));
	f->since_ns = since_ns;
	f->until_ns = until_ns;
	f->timestamps = timestamps;
}

/* The head of a line is complete (or the line ended before a stamp's
 * length): whether it is shown, and what of the head. */
static void decide(struct log_filter *f, void (*out)(void *, const char *, size_t), void *arg)
{
	int64_t when;
	bool stamped = log_stamp_parse(f->head, f->head_len, &when) == 0;
	if (stamped)
		f->keep =
		    (!f->since_ns || when >= f->since_ns) && (!f->until_ns || when < f->until_ns);
	else
		f->keep = !f->since_ns && !f->until_ns;
	f->in_line = true;
	if (!f->keep)
		return;
	if (stamped && !f->timestamps)
		return;
	out(arg, f->head, f->head_len);
}

void log_filter_feed(struct log_filter *f, const char *buf, size_t n,
		     void (*out)(void *arg, const char *p, size_t len), void *arg)
{
	while (n) {
		if (!f->in_line) {
			/* Gather the stamp, which may come in pieces. */
			size_t take = LOG_STAMP_LEN - f->head_len;
			const char *nl = memchr(buf, '\n', n < take ? n : take);
			if (nl)
				take = (size_t)(nl - buf);
			else if (take > n)
				take = n;
			memcpy(f->head + f->head_len, buf, take);
			f->head_len += take;
			buf += take;
			n -= take;
			if (f->head_len < LOG_STAMP_LEN && !nl)
				return;
			decide(f, out, arg);
			f->head_len = 0;
			continue;
		}
		const char *nl = memchr(buf, '\n', n);
		size_t len = nl ? (size_t)(nl - buf) + 1 : n;
		if (f->keep)
			out(arg, buf, len);
		buf += len;
		n -= len;
		if (nl)
			f->in_line = false;
	}
}
