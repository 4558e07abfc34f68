/* Private to shim/: reading and writing state.json (struct instance_state, see shim.h). */
#ifndef BERTH_SHIM_STATE_H
#define BERTH_SHIM_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "shim/shim.h"

const char *instance_status_name(enum instance_status s);
/* Writes <dir>/state.json atomically (temporary file, fsync, rename). */
NODISCARD int state_write(const char *dir, const struct instance_state *st, struct berr *err);
NODISCARD int state_parse(const char *buf, size_t len, const char *what, struct instance_state *st,
			  struct berr *err);
/* Field 22 of /proc/<pid>/stat (clock ticks since boot), or -1. */
int64_t proc_start_time(pid_t pid);

#endif
