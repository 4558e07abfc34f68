/* Private to shim/: the log of a detached instance: <dir>/log, renamed to log.1 (replacing
 * the previous one) when the next bytes would take it past `max`, so the two
 * files together never exceed 2 * max. */
#ifndef BERTH_SHIM_LOGFILE_H
#define BERTH_SHIM_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LOGFILE_DEFAULT_MAX (1 << 20)

struct logfile {
	int dir_fd;
	int fd;
	int64_t size;
	int64_t max;
};

/* Opens (appends to) log in the directory dir_fd, which stays owned by the
 * caller. max <= 0 means LOGFILE_DEFAULT_MAX. */
NODISCARD int logfile_open(struct logfile *lf, int dir_fd, int64_t max, struct berr *err);
NODISCARD int logfile_write(struct logfile *lf, const void *buf, size_t n, struct berr *err);
void logfile_close(struct logfile *lf);

#endif
