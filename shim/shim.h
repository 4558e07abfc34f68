/* Module instances: what one needs to run (struct instance_spec), starting it
 * under its own supervising shim process, and the state the shim leaves.
 *
 * Per-instance directory <root>/instances/<name>/:
 *   spec.json    the instance_spec the shim was started with
 *   state.json   written by the shim (atomically) on every change
 *   upper/ work/ overlay upper and work directories
 *   rootfs/      mount point of the overlay (mounted only inside the instance)
 *   log, log.1   stdout+stderr of a detached instance, size-bounded, rotated
 * The instance cgroup is "berth/<name>" in every hierarchy in use.
 */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/names.h"

enum net_mode {
	NET_NONE = 0, /* a network namespace of its own with only lo, up */
	NET_HOST = 1, /* the host's */
	NET_JOIN = 2, /* the namespace pinned at `netns`, set up by the caller (CNI) */
};

struct bind_mount {
	char *source;	   /* host path */
	char *destination; /* path inside the instance */
	bool readonly;
};

struct device_rule {
	char *path;	   /* host device node, e.g. /dev/ttyUSB0 */
	char *path_in;	   /* path inside the instance (default: same) */
	char *permissions; /* "rwm" subset */
};

/* A health check, as Docker's Healthcheck with its defaults applied by
 * whoever builds the spec (0 fields take Docker's defaults here too). */
struct instance_health {
	char **test;		   /* the check's argv; NULL: none */
	int64_t interval_ms;	   /* between checks (30 s) */
	int64_t timeout_ms;	   /* a check running longer is killed and failed (30 s) */
	int64_t start_period_ms;   /* failures then do not count until one succeeds (0) */
	int64_t start_interval_ms; /* between checks in the start period (5 s) */
	int retries;		   /* consecutive failures that make it unhealthy (3) */
	bool stop_when_unhealthy;  /* restartPolicy on-unhealthy: the shim stops it */
};

struct instance_spec {
	char *name; /* unique on the device; also the cgroup and directory name */
	/* Root filesystem: an overlay of layer_dirs (bottom first) with a private
	 * upper directory, or an existing directory `rootfs` (bundle mode). */
	char **layer_dirs; /* NULL-terminated */
	char *rootfs;
	bool readonly_rootfs;
	char *image_digest; /* manifest digest, for the lease and `list` (may be NULL) */

	char **args;	/* NULL-terminated argv; args[0] looked up in the instance's PATH */
	char **env;	/* NULL-terminated "K=V" */
	char *cwd;	/* default "/" */
	char *user;	/* "uid[:gid]" or "name[:group]" resolved in the image; NULL: root */
	char *hostname; /* default: the instance name */

	struct bind_mount *binds; /* n_binds entries */
	size_t n_binds;
	struct device_rule *devices;
	size_t n_devices;

	enum net_mode network;
	char *netns;	    /* NET_JOIN: where the network namespace is pinned (netns_create) */
	char **hosts;	    /* lines added to /etc/hosts ("10.88.0.5 web"), NULL-terminated */
	char **dns;	    /* name servers for /etc/resolv.conf; NULL: from the host's */
	char **dns_search;  /* search domains (with dns) */
	char **dns_options; /* resolver options (with dns) */
	/* /etc/hosts entries "name:address" (IPv4 or IPv6) written first, the
	 * host's own lines for those names left out: they win over them (the
	 * gateway's name on the host's network). */
	char **extra_hosts;
	bool userns;	     /* map root to an unprivileged host range */
	int64_t userns_base; /* first host uid/gid of the 65536 mapped ids; 0: 100000 */

	/* Resources; 0 or negative means unset. */
	int64_t memory;	     /* bytes */
	int64_t memory_swap; /* bytes, memory+swap as Docker's MemorySwap; -1 unlimited */
	int64_t pids_limit;
	int64_t cpu_quota_us; /* with cpu_period_us; from --cpus F: quota = F * period */
	int64_t cpu_period_us;
	int64_t cpu_shares; /* v1 shares (2..262144); mapped to v2 weight */

	char **cap_add;	 /* "CAP_NET_ADMIN" or "NET_ADMIN", NULL-terminated */
	char **cap_drop; /* "ALL" drops every capability */
	bool privileged; /* all capabilities, no seccomp, all devices */

	int stop_grace_sec;    /* SIGTERM, then SIGKILL after this many seconds (default 10) */
	int64_t log_max_bytes; /* per log file before rotation (default 1 MiB) */
	struct instance_health health;
};

/* Frees n binds or device rules and what they point to. */
void bind_mounts_free(struct bind_mount *b, size_t n);
void device_rules_free(struct device_rule *d, size_t n);
/* Copies of n binds or device rules (NULL for none, or when memory ran
 * out: *ok false, see common/strv.h). */
struct bind_mount *bind_mounts_dup(const struct bind_mount *b, size_t n, bool *ok);
struct device_rule *device_rules_dup(const struct device_rule *d, size_t n, bool *ok);

/* Frees what a spec points to and zeroes it (for a spec on the stack). */
void instance_spec_clear(struct instance_spec *spec);
void instance_spec_free(struct instance_spec *spec);
NODISCARD int instance_spec_write(const struct instance_spec *spec, const char *path,
				  struct berr *err);
NODISCARD int instance_spec_read(const char *path, struct instance_spec **out, struct berr *err);
/* The same as JSON text, and back; `what` names the document in errors. */
NODISCARD int instance_spec_to_json(const struct instance_spec *spec, char **out, size_t *len,
				    struct berr *err);
NODISCARD int instance_spec_from_json(const char *buf, size_t len, const char *what,
				      struct instance_spec **out, struct berr *err);
/* Checks what a shim relies on: the name, absolute paths, either layers or a
 * rootfs, a command, KEY=VALUE environment, limits in range. */
NODISCARD int instance_spec_validate(const struct instance_spec *spec, struct berr *err);
bool instance_name_valid(const char *name);
/* "name:address" with a host name and an IPv4 or IPv6 address. */
bool extra_host_valid(const char *entry);

enum instance_status {
	INSTANCE_CREATED, /* shim started, process not yet running */
	INSTANCE_RUNNING,
	INSTANCE_EXITED,  /* exited; the shim is gone or about to go */
	INSTANCE_UNKNOWN, /* no readable state */
};

enum health_status { HEALTH_NONE, HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };
/* "none", "starting", "healthy", "unhealthy" (as Docker). */
const char *health_status_name(enum health_status s);

#define HEALTH_OUTPUT_KEPT 512 /* of a check's output in state.json */

struct instance_state {
	enum instance_status status;
	pid_t shim_pid;
	int64_t shim_start_time; /* /proc/<pid>/stat starttime, to detect pid reuse */
	pid_t pid;		 /* the module's pid 1, as seen from the host */
	int exit_code;		 /* valid when EXITED: 0-255, or 128+signal */
	int exit_signal;	 /* 0 unless killed by a signal */
	bool oom_killed;
	int64_t started_at; /* Unix time in ms */
	int64_t finished_at;
	char error[256]; /* why the start failed, if it did */
	/* Health checks (health is HEALTH_NONE without one). */
	enum health_status health;
	int health_failing_streak;
	int health_exit_code;	   /* of the last check; -1: it timed out */
	int64_t health_checked_at; /* Unix ms when the last check ended; 0: none yet */
	char health_output[HEALTH_OUTPUT_KEPT];
	bool stopped_unhealthy; /* the shim stopped it for being unhealthy */
};

/* Starts a detached shim for spec (its directory is created, the spec
 * written) and returns once the module's process runs or has failed to
 * start (err then says why, e.g. "exec /app: no such file"). The shim
 * survives the caller. */
NODISCARD int shim_start(const char *root, const struct instance_spec *spec, pid_t *shim_pid,
			 struct berr *err);

/* Reads state.json; a shim that died without writing EXITED is reported as
 * EXITED with exit_code 255 and an error. */
NODISCARD int shim_state_read(const char *root, const char *name, struct instance_state *st,
			      struct berr *err);

/* True when the shim recorded in st is still the same live process. */
bool shim_alive(const struct instance_state *st);

/* Asks the shim to stop its instance: SIGTERM, then SIGKILL to the whole
 * cgroup after the grace period. Waits until the shim is gone (at most
 * grace + 5 s). Not running is not an error. */
NODISCARD int shim_stop(const char *root, const char *name, int grace_sec, struct berr *err);

/* The same request without the wait: returns once the shim has been asked
 * to stop its instance within grace_sec. The caller watches the shim's exit
 * (a pidfd) and may call shim_stop() to force it should the shim outlive
 * the grace period. Not running is not an error. */
NODISCARD int shim_stop_request(const char *root, const char *name, int grace_sec,
				struct berr *err);

/* `berth logs`: what an instance wrote to its stdout and stderr (log.1, then
 * log), each line stamped with when it arrived. */
struct shim_log_query {
	int64_t since_ns, until_ns; /* Unix ns; 0: no bound */
	long tail;		    /* the last lines only; -1: all */
	bool timestamps;	    /* show the stamps (RFC 3339, ns, UTC) */
	bool follow;		    /* then go on with what comes, across rotation */
};
/* Writes the lines the query selects to out_fd; with follow it returns only
 * on an error. */
NODISCARD int shim_logs(const char *root, const char *name, const struct shim_log_query *q,
			int out_fd, struct berr *err);

/* What an instance uses now, from its cgroup (v1, v2 or hybrid): CPU time
 * since it was started, memory as its limit counts it, processes; -1 for
 * what the layout does not tell. An instance without a cgroup is an error. */
struct instance_usage {
	int64_t cpu_ns, memory_bytes, pids;
};
NODISCARD int shim_instance_usage(const char *name, struct instance_usage *u, struct berr *err);

/* `berth exec`: a program run in a running instance through its shim. */
struct shim_exec_options {
	char **args;	  /* required */
	char **env;	  /* "K=V" over the instance's environment */
	const char *user; /* NULL: the instance's */
	const char *cwd;  /* NULL: the instance's */
	bool interactive; /* the caller's stdin is relayed (else it reads as empty) */
	bool tty;	  /* a terminal of the instance (raw mode when stdin is one) */
};

/* Runs o->args in the instance and relays its stdio (or its terminal),
 * forwarding SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it.
 * *status gets its exit status as a shell reports it; when it did not
 * start, 126 (cannot be executed), 127 (not found) or 125 (anything else,
 * the instance not running included) and -1 with err saying why. */
NODISCARD int shim_exec(const char *root, const char *name, const struct shim_exec_options *o,
			int *status, struct berr *err);

/* Removes a stopped instance: directory (upper, work, logs, state) and cgroup. */
NODISCARD int shim_remove(const char *root, const char *name, struct berr *err);

/* What a foreground run (berth run --rm, berth oci run) killed before it
 * could clean up leaves: an instance directory without spec.json that no
 * one holds, and the instance's cgroup. shim_reclaim removes them for one
 * name (1 when there was such a leftover, 0 when not); shim_reclaim_all for
 * every instance not changed in the last two seconds, telling fn each name,
 * whose image lease the caller then drops. */
NODISCARD int shim_reclaim(const char *root, const char *name, struct berr *err);
NODISCARD int shim_reclaim_all(const char *root, void (*fn)(const char *name, void *ctx), void *ctx,
			       struct berr *err);

/* Network namespaces the caller equips before the instance starts (the
 * daemon, with the CNI plugins): a new namespace with lo up, pinned by a bind
 * mount on path (a new empty file), so it lives on without any process in
 * it until netns_remove(). An instance with network NET_JOIN is born in it. */
NODISCARD int netns_create(const char *path, struct berr *err);
/* Detaches the pin and removes the file; a missing one is not an error. */
NODISCARD int netns_remove(const char *path, struct berr *err);
/* Deletes the bridge `name` (its address and routes go with it) once no
 * interface is attached to it: 1 when deleted, 0 when there is no such
 * bridge, -1 with err (EBUSY while ports remain, or not a bridge). */
NODISCARD int netns_bridge_delete(const char *name, struct berr *err);

/* Rewrites the /etc/hosts of a NET_JOIN instance, running or not, with
 * `hosts` as its added lines. The file is bind-mounted into the instance, so
 * it is written in place (a new file renamed over it would not reach the
 * instance); a reader sees the old lines or the new ones, with blank lines
 * at the end for a moment when the file shrinks. */
NODISCARD int shim_hosts_update(const char *root, const char *name, char *const *hosts,
				struct berr *err);

#endif
