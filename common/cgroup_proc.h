/* Which instance a host process belongs to, read from /proc/<pid>/cgroup.
 * The hub and the daemon's workload API ask this of every Unix-socket peer
 * to bind it to its module. */
#ifndef BERTH_CGROUP_PROC_H
#define BERTH_CGROUP_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Instance cgroups are CGROUP_PARENT/<instance name> in every hierarchy. */
#define CGROUP_PARENT "berth"

/* Bounds for /proc/<pid>/cgroup: the kernel prints one line per hierarchy
 * with a path of at most PATH_MAX. */
#define CGROUP_PROC_MAX_BYTES 65536
#define CGROUP_PROC_MAX_LINES 64
#define CGROUP_PROC_MAX_LINE  8192

/* The instance name a host pid belongs to: fills name and returns 0 when pid
 * is inside berth/<name> (or below it), returns 1 when it is not in any
 * instance, -1 on error. */
NODISCARD int cgroup_instance_of_pid(pid_t pid, char *name, size_t cap, struct berr *err);
/* The same for a pidfd (SO_PEERPIDFD, pidfd_open): answers only if the
 * process is still alive once its cgroup was read, so a pid reused by
 * another process cannot answer for it. Linux 5.3+. */
NODISCARD int cgroup_instance_of_pidfd(int pidfd, char *name, size_t cap, struct berr *err);

/* Parses the text of a /proc/<pid>/cgroup file, as the two above do: 0 and
 * name filled when the process is in berth/<name> (or below), 1 when it is
 * in no instance, -1 on malformed or contradictory input. */
NODISCARD int cgroup_parse_proc_cgroup(const char *text, size_t len, char *name, size_t cap,
				       struct berr *err);

#endif
