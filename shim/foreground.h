/* Private to shim/: an instance run in the foreground by the calling process. */
#ifndef BERTH_SHIM_FOREGROUND_H
#define BERTH_SHIM_FOREGROUND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "shim/sandbox.h"

struct foreground_result {
	pid_t pid;     /* the module's pid 1 on the host */
	int status;    /* as waitpid() reported it */
	int exit_code; /* 0-255, 128+signal, 137 after the OOM killer */
	bool oom_killed;
	int64_t started_at;
};

/* Starts sb, relays stdio (a terminal of its own when stdin is one),
 * forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 (a second
 * SIGINT or SIGTERM kills), waits for the module's exit, then kills what is
 * left and removes the cgroup. -1 only when the instance did not start. */
NODISCARD int sandbox_run_foreground(struct sandbox *sb, struct foreground_result *res,
				     struct berr *err);

/* A wait status as a shell reports it: the exit code, or 128+signal. */
int exit_status_of(int status);

#endif
