/* Private to shim/: the instance process as the kernel needs it: namespaces, root file system,
 * mounts, identity, privileges. Built from an instance_spec (`berth run`, the
 * shim) or from an OCI config.json (`berth oci run`); started by
 * sandbox_start(), which returns once the module's program runs.
 *
 * Privileged steps happen in two places only: the parent side in sandbox.c
 * (cgroup, id maps, idmapped layers) and the instance side in rootfs.c
 * (mounts, pivot_root) and process.c (identity, capabilities, seccomp, exec). */
#ifndef BERTH_SHIM_SANDBOX_H
#define BERTH_SHIM_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <yajl/yajl_tree.h>

#include "common/err.h"
#include "shim/cgroup.h"
#include "shim/security.h"

struct instance_spec;

enum sb_mount_kind {
	SBM_FS,	    /* a new file system: proc, sysfs, tmpfs, devpts, mqueue, ... */
	SBM_BIND,   /* a host path */
	SBM_CGROUP, /* the host's cgroup hierarchies, seen through the cgroup namespace */
};

struct sb_mount {
	enum sb_mount_kind kind;
	char *destination;	   /* absolute, resolved inside the root */
	char *type;		   /* SBM_FS */
	char *source;		   /* SBM_BIND: host path; SBM_FS: device name */
	unsigned long flags;	   /* MS_RDONLY, MS_NOSUID, ... */
	unsigned long propagation; /* 0 or MS_PRIVATE/MS_SLAVE/... (| MS_REC) */
	bool recursive;		   /* rbind */
	char *data;		   /* file-system options */
	/* SBM_BIND: a detached copy of the source made by the parent before the
	 * instance's mount namespace exists (open_tree), attributes already set;
	 * -1 on kernels without the mount API (the instance binds by path). */
	int source_fd;
	bool source_is_dir;
	bool attrs_done;
	char *content; /* SBM_BIND of an ephemeral instance: written to source first */
};

struct sb_idmap {
	uint32_t inside, outside, count;
};

#define SB_IDMAP_MAX 5 /* id map lines a bundle may give (the kernel takes up to 340) */

struct sb_rlimit {
	int resource;
	struct rlimit limit;
};

enum sb_seccomp { SB_SECCOMP_NONE, SB_SECCOMP_DEFAULT, SB_SECCOMP_OCI };

enum sb_stdio {
	SB_STDIO_INHERIT, /* the instance uses the caller's 0, 1, 2 */
	SB_STDIO_FDS,	  /* stdio_fds[0..2] become 0, 1, 2 */
	SB_STDIO_TTY,	  /* a new pseudo-terminal of the instance's devpts */
};

struct sandbox {
	char *name;	    /* instance name; cgroup berth/<name> */
	char *instance_dir; /* absolute; NULL in bundle mode */

	/* Root: an overlay of layer_dirs (bottom first) with upper_dir and
	 * work_dir, mounted on mountpoint; or rootfs_dir bound onto itself. */
	char **layer_dirs;
	char *upper_dir;
	char *work_dir;
	char *mountpoint;
	char *rootfs_dir;
	bool readonly_root;
	/* The writable layer and the generated /etc files live in a tmpfs that
	 * the instance mounts over instance_dir in its own mount namespace:
	 * nothing reaches the disk, and nothing is left to remove after it. */
	bool ephemeral;
	unsigned long root_propagation; /* MS_PRIVATE|MS_REC unless the bundle says otherwise */

	int clone_flags; /* CLONE_NEW* */
	/* A network namespace to be born in (instance_spec NET_JOIN): the
	 * parent enters it around the clone, so it works with a user
	 * namespace too, whose root has no say over the host's namespaces. */
	char *netns_path;
	char *hostname; /* with CLONE_NEWUTS; NULL keeps the inherited one */
	struct sb_idmap uid_map[SB_IDMAP_MAX], gid_map[SB_IDMAP_MAX];
	size_t n_uid_map, n_gid_map;

	struct sb_mount *mounts;
	size_t n_mounts;
	bool default_devices; /* null, zero, full, random, urandom, tty, ptmx, fd links */
	char **masked_paths;
	char **readonly_paths;
	char **device_hosts; /* host device nodes bound into the instance, */
	char **device_paths; /* at these paths (the two vectors go in pairs) */

	/* The process. */
	char **args;
	char **env;
	char *cwd;
	bool create_cwd; /* make the working directory if the image lacks it */
	char *user;	 /* resolved in the image's /etc/passwd, or */
	bool ids_given;	 /* uid/gid/groups given directly (bundle) */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	bool set_home; /* HOME from /etc/passwd unless env has it */
	struct cap_sets caps;
	bool no_new_privs;
	enum sb_seccomp seccomp;
	yajl_val seccomp_oci;	       /* SB_SECCOMP_OCI; owned by `doc` */
	uint64_t seccomp_caps;	       /* capabilities the default filter may allow */
	struct seccomp_filter *filter; /* built by sandbox_start() before clone */
	struct sb_rlimit *rlimits;
	size_t n_rlimits;
	bool oom_score_adj_set;
	int oom_score_adj;
	bool umask_set;
	mode_t umask;

	enum sb_stdio stdio;
	int stdio_fds[3];
	/* The instance becomes a child of the caller's parent (CLONE_PARENT):
	 * the shim's short-lived starter process uses it. */
	bool clone_parent;

	struct cgroup_limits limits; /* devices array owned here */
	struct cgroup_device *devices;

	yajl_val doc; /* config.json tree the strings above may point into */
};

struct sandbox_proc {
	pid_t pid; /* the module's pid 1, as the host sees it */
	struct cgroup *cg;
	int tty_master;	    /* SB_STDIO_TTY: the terminal's master side, else -1 */
	int64_t started_at; /* ms since the epoch */
};

struct sandbox *sandbox_new(void);
void sandbox_free(struct sandbox *sb);
NODISCARD int sandbox_add_mount(struct sandbox *sb, enum sb_mount_kind kind, const char *type,
				const char *source, const char *destination, unsigned long flags,
				const char *data, struct berr *err);

/* The sandbox an instance_spec describes. instance_dir holds upper/, work/,
 * rootfs/ and the generated /etc files, on disk or, for an ephemeral
 * instance (`berth run --rm`; not with a user namespace), in memory. */
NODISCARD int sandbox_from_spec(const struct instance_spec *spec, const char *instance_dir,
				bool ephemeral, struct sandbox **out, struct berr *err);

/* Creates the cgroup, starts the instance and returns once its program has
 * been executed (0) or failed to start (-1, err says why: "exec /app: No
 * such file or directory"). Signals the caller wants to handle must be
 * blocked before the call; the instance starts with none blocked. */
NODISCARD int sandbox_start(struct sandbox *sb, struct sandbox_proc *p, struct berr *err);

/* After the module's pid 1 exited: kills what is left in the cgroup and
 * removes it; reports whether the OOM killer struck. */
NODISCARD int sandbox_finish(struct sandbox_proc *p, bool *oom_killed, struct berr *err);

/* Parent side, before the instance exists: detached copies of bind sources. */
NODISCARD int rootfs_prepare_binds(struct sandbox *sb, struct berr *err);
void rootfs_close_binds(struct sandbox *sb);

/* Instance side (rootfs.c, process.c), run in the new namespaces. */
struct sb_child {
	int sync_fd;	   /* to the parent; close-on-exec, so exec success reads as EOF */
	int root_mount_fd; /* user namespaces: the root the parent built and attached */
	int root_fd;	   /* the assembled root, until pivot_root */
	bool in_cgroup;	   /* in its cgroup in every hierarchy */
	bool cgroup_ns_done;
};

/* Waits until the parent has put the instance into its cgroup (it does so
 * while the instance mounts its root), then enters a cgroup namespace rooted
 * there. Called before anything that depends on the cgroup. */
NODISCARD int sandbox_join_cgroup(struct sandbox *sb, struct sb_child *c, struct berr *err);

/* Mounts the root and everything below it, then pivot_root()s into it. */
NODISCARD int rootfs_setup(struct sandbox *sb, struct sb_child *c, struct berr *err);
/* Identity, limits, privileges, then exec; returns only on failure. */
NODISCARD int process_exec(struct sandbox *sb, struct sb_child *c, struct berr *err);
/* chdir(cwd), then checks that the working directory is inside the root:
 * a path through a descriptor of the host's (/proc/self/fd/N, the class of
 * CVE-2024-21626) would lead outside it. */
NODISCARD int sandbox_enter_cwd(const char *cwd, struct berr *err);
/* Brings lo up in the caller's network namespace (netns.c). */
NODISCARD int netns_loopback_up(struct berr *err);
/* Reports a failure to the parent ('X', the errno as 4 bytes, the message)
 * and exits 127. */
__attribute__((noreturn)) void sandbox_child_fail(int sync_fd, const struct berr *err);
/* Parent side: reads the instance process's reports on sock until it has
 * exec'd (0; p->tty_master filled when it sent a terminal) or failed. */
NODISCARD int sandbox_wait_exec(int sock, struct sandbox_proc *p, struct berr *err);
/* Sends the pseudo-terminal master to the parent (SB_STDIO_TTY). */
NODISCARD int sync_send_fd(int sock, char tag, int fd, struct berr *err);

#endif
