/* Private to shim/: one cgroup per instance, "berth/<name>", on cgroup v1, v2 or the hybrid
 * layout, detected at run time. Every file-name difference between v1 and v2
 * lives in cgroup.c. `fs_root` is normally "/sys/fs/cgroup"; tests pass a
 * directory that stands in for it. */
#ifndef BERTH_SHIM_CGROUP_H
#define BERTH_SHIM_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cgroup_proc.h"
#include "common/err.h"

#define CGROUP_FS_ROOT "/sys/fs/cgroup"

enum cgroup_layout {
	CGROUP_LAYOUT_V1,     /* controllers mounted one per directory */
	CGROUP_LAYOUT_V2,     /* one unified hierarchy at fs_root */
	CGROUP_LAYOUT_HYBRID, /* v1 controllers plus a cgroup2 at fs_root/unified */
};

struct cgroup_device {
	char type;	/* 'c', 'b' or 'a' (all) */
	int64_t major;	/* -1: any */
	int64_t minor;	/* -1: any */
	char access[4]; /* subset of "rwm" */
	bool allow;
};

struct cgroup_limits {
	int64_t memory;	      /* bytes; <= 0 unset */
	int64_t memory_swap;  /* memory+swap bytes as Docker; -1 unlimited swap; 0 unset */
	int64_t pids_limit;   /* <= 0 unset */
	int64_t cpu_quota_us; /* with cpu_period_us; <= 0 unset */
	int64_t cpu_period_us;
	int64_t cpu_shares; /* v1 shares; on v2 converted to cpu.weight */
	/* Device rules applied in order after "deny all"; NULL/0 gives the
	 * container default set (null, zero, full, random, urandom, tty, ptmx,
	 * pts). */
	const struct cgroup_device *devices;
	size_t n_devices;
	bool allow_all_devices; /* privileged instances */
};

/* The devices every container may use when no rules are given: mknod of any
 * node, null, zero, full, random, urandom, tty, ptmx and pts (as runc).
 * Callers that add devices of their own start from this list. */
extern const struct cgroup_device cgroup_default_devices[];
extern const size_t cgroup_default_devices_count;

struct cgroup;

NODISCARD int cgroup_detect(const char *fs_root, enum cgroup_layout *out, struct berr *err);
const char *cgroup_layout_name(enum cgroup_layout layout);

/* Creates (or takes over, if left from a crash) berth/<name> in every
 * hierarchy in use and writes the limits. */
NODISCARD int cgroup_create(const char *fs_root, const char *name,
			    const struct cgroup_limits *limits, struct cgroup **out,
			    struct berr *err);
/* Opens an existing instance cgroup (re-attach, cleanup). */
NODISCARD int cgroup_open(const char *fs_root, const char *name, struct cgroup **out,
			  struct berr *err);
void cgroup_free(struct cgroup *cg);

/* Moves pid into the instance cgroup in every hierarchy. Moving another
 * process takes the kernel's global cgroup lock for writing, which waits
 * for an RCU grace period (5-15 ms): the two calls below avoid it. */
NODISCARD int cgroup_add_pid(struct cgroup *cg, pid_t pid, struct berr *err);
/* A directory fd of the unified (v2) instance cgroup for
 * clone3(CLONE_INTO_CGROUP), which starts a process there, or -1 on pure v1. */
int cgroup_unified_fd(struct cgroup *cg);
/* Moves the calling single-threaded process into the instance cgroup of
 * every v1 hierarchy (a thread moving itself skips the global lock). Run in
 * the instance's process, with the privileges of the initial user namespace
 * (before a user namespace's id switch); the unified hierarchy is joined by
 * clone3 with cgroup_unified_fd(). */
NODISCARD int cgroup_join_self(struct cgroup *cg, struct berr *err);

/* Number of processes still in the cgroup (-1 on error). */
int cgroup_count_procs(struct cgroup *cg);
/* SIGKILLs every process in the cgroup and waits (bounded) until it is empty:
 * cgroup.kill where it exists, else freeze, kill each pid, thaw, repeat. */
NODISCARD int cgroup_kill_all(struct cgroup *cg, struct berr *err);
/* True when the kernel's OOM killer killed a process of this cgroup. */
bool cgroup_oom_killed(struct cgroup *cg);
/* Current memory use in bytes, or -1. */
int64_t cgroup_memory_current(struct cgroup *cg);
/* What the instance uses now: CPU time since the cgroup was made
 * (cpuacct.usage, or usage_usec of cpu.stat), memory (as the limit counts
 * it) and processes; -1 for what the layout does not tell. */
struct cgroup_usage {
	int64_t cpu_ns, memory_bytes, pids;
};
void cgroup_usage(struct cgroup *cg, struct cgroup_usage *u);
/* Removes the instance cgroup from every hierarchy (must be empty). */
NODISCARD int cgroup_destroy(struct cgroup *cg, struct berr *err);

#endif
