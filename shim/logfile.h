/* Private to shim/: the log of a detached instance: <dir>/log, renamed to log.1 (replacing
 * the previous one) when the next bytes would take it past `max`, so the two
 * files together never exceed 2 * max.
 *
 * Every line starts with the time its first bytes arrived, as Docker's
 * RFC 3339 with nanoseconds in UTC and a space (LOG_STAMP_LEN bytes):
 *   2024-05-01T12:00:00.123456789Z hello
 * A line is rotated into log.1 whole unless it alone is longer than max. */
#ifndef BERTH_SHIM_LOGFILE_H
#define BERTH_SHIM_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LOGFILE_DEFAULT_MAX (1 << 20)
#define LOG_STAMP_LEN	    31

struct logfile {
	int dir_fd;
	int fd;
	int64_t size;
	int64_t max;
	bool at_line_start; /* the next byte starts a line */
};

/* Opens (appends to) log in the directory dir_fd, which stays owned by the
 * caller. max <= 0 means LOGFILE_DEFAULT_MAX. */
NODISCARD int logfile_open(struct logfile *lf, int dir_fd, int64_t max, struct berr *err);
/* Appends output that arrived now; logfile_write_at() with its arrival time
 * (Unix ns). */
NODISCARD int logfile_write(struct logfile *lf, const void *buf, size_t n, struct berr *err);
NODISCARD int logfile_write_at(struct logfile *lf, const void *buf, size_t n, int64_t when_ns,
			       struct berr *err);
void logfile_close(struct logfile *lf);

/* Writes the stamp of when_ns (LOG_STAMP_LEN bytes and a NUL). */
void log_stamp_format(int64_t when_ns, char out[LOG_STAMP_LEN + 1]);
/* Reads a stamp at the start of p (n bytes): 0 with *when_ns, or -1 when
 * it is not one (a log written before stamps, or damaged). */
int log_stamp_parse(const char *p, size_t n, int64_t *when_ns);

/* What `berth logs` shows of a log: lines stamped within [since, until)
 * (0: no bound), with or without their stamps. Fed in pieces of any size;
 * lines without a stamp count as unstamped and are shown only without
 * bounds. */
struct log_filter {
	int64_t since_ns, until_ns;
	bool timestamps;
	/* Where the line in progress stands. */
	bool in_line;
	bool keep;
	char head[LOG_STAMP_LEN];
	size_t head_len;
};
void log_filter_init(struct log_filter *f, int64_t since_ns, int64_t until_ns, bool timestamps);
/* Calls out(arg, bytes, len) with what is to be shown of buf. */
void log_filter_feed(struct log_filter *f, const char *buf, size_t n,
		     void (*out)(void *arg, const char *p, size_t len), void *arg);

#endif
