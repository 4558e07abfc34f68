/* The instance joining its own cgroup without the kernel's global cgroup
 * lock. Writing another process's pid to cgroup.procs takes that lock for
 * writing, which waits for an RCU grace period (5-15 ms here, the largest
 * single cost of starting an instance). A thread moving itself (writing "0"
 * to a v1 `tasks` file) skips the lock, and a process cloned with
 * CLONE_INTO_CGROUP is born in its v2 cgroup. cgroup.h offers neither, so
 * this file knows the one v1 file name it needs; cgroup.c keeps the rest. */
#ifndef BERTH_SHIM_CGROUP_JOIN_H
#define BERTH_SHIM_CGROUP_JOIN_H

#include "common/err.h"

/* Moves the calling single-threaded process into berth/<name> of every v1
 * hierarchy mounted under /sys/fs/cgroup where that cgroup exists. Needs the
 * privileges of the initial user namespace. */
int cgroup_join_self_v1(const char *name, struct berr *err);

#endif
