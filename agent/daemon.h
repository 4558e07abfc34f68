/* The daemon's state, shared by its parts (daemon.c: the event loop and
 * signals; reconcile.c: desired against actual; identity.c: generation ids
 * and tokens; hubproc.c: the hub process; control.c: the CLI socket;
 * record.c: what survives a restart). Private to agent/. */
#ifndef BERTH_AGENT_DAEMON_H
#define BERTH_AGENT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>

#include "agent/config.h"
#include "agent/deployment.h"
#include "agent/status.h"
#include "common/digest.h"
#include "common/err.h"

#define GENERATION_ID_LEN  32
#define CONTROL_SOCKET	   "berthd.sock"
#define HUB_SOCKET	   "hub.sock"
#define HUB_CONTROL_SOCKET "hubctl.sock"
/* Inside every instance, <run>/shared is mounted read-only at /run/berth and
 * the module's own <run>/modules/<name> at /run/berth/module. A directory,
 * not the socket file, is mounted so that a hub socket made again by a
 * restarted daemon is the one modules reconnect to. <run>/hub.sock is a
 * hard link to <run>/shared/hub.sock. */
#define SHARED_DIR	   "shared"
#define MODULE_RUN_DIR	   "/run/berth"
#define MODULE_HUB_SOCKET  "/run/berth/hub.sock"
#define MODULE_RUNTIME_DIR "/run/berth/module"
#define MODULE_TOKEN_FILE  MODULE_RUNTIME_DIR "/token"

struct oci_store;
struct identities;

/* One module the daemon manages: what is persisted (record.c) plus what only
 * lives as long as this daemon. */
struct module_rt {
	char name[MODULE_NAME_MAX + 1];
	char generation_id[GENERATION_ID_LEN + 1];
	char config_hash[17];		   /* of the deployment the instance was created from */
	char image_digest[DIGEST_STR_MAX]; /* what was pulled for it */
	char image[IMAGE_REF_MAX + 1];	   /* reference, for `list` */
	bool has_instance;		   /* an instance directory exists (ours) */
	enum runtime_status status;
	int exit_code;
	unsigned restart_count;
	/* Wall clock (Unix ms), shown as lastStartTimeUtc etc.; 0: never. */
	int64_t last_start_ms, last_exit_ms, last_restart_ms;
	char description[256]; /* why it is not running, when known */

	/* Not persisted. Intervals (backoff, uptime, the healthy reset) run on
	 * the boot clock, which a change of the system time does not move. */
	int64_t started_boot, exited_boot; /* boot_ms() of the last start, exit; 0: unknown */
	int64_t next_start_boot;	   /* backoff: not before; 0: at once */
	pid_t shim_pid;
	int pidfd;			 /* readable when the shim exits; -1 */
	pid_t pull_pid;			 /* a `berth pull` child at work; 0 */
	char pulling[IMAGE_REF_MAX + 1]; /* the reference it pulls */
	bool pull_failed;
	bool started_here;	/* ran at least once (startup order gate) */
	bool restart_requested; /* `berth restart`: the next start is the user's */
	/* A stop the daemon asked for is under way: the exit arrives on the
	 * pidfd, and the stop is forced after the deadline (boot clock). */
	bool stopping;
	int64_t stop_deadline_boot;
	int restart_reply_fd; /* a `berth restart` waiting for the stop; -1 */
	/* Wall clock: a token expires by the wall clock, so a jump forward
	 * makes it due at once. */
	int64_t token_refresh_ms;
	bool done; /* exited, and the policy does not restart it */
};

struct hub_proc {
	pid_t pid;
	int listen_fd; /* <run>/hub.sock, created once by the daemon */
	unsigned restart_count;
	int64_t next_start_boot;
	int64_t started_boot;
	bool config_dirty; /* hub config rewritten: SIGHUP due */
};

struct daemon {
	struct agent_config *cfg;
	char *config_path;
	char root[4096];
	char run[4096];
	struct deployment *dep; /* applied; NULL: none yet */
	struct oci_store *store;

	struct module_rt **mods;
	size_t n_mods;

	struct hub_proc hub;
	int epfd;
	int sigpipe[2];
	int control_fd;
	int workload_fd;
	bool stopping;
	bool reconcile_due;
	int64_t next_reconcile_boot;
	int64_t trim_boot; /* give back memory the last burst of work used; 0: none due */
	/* The kernel's boot id now, and the one the records were written in:
	 * instances of an earlier boot ended with it, they did not fail. */
	char boot_id[40];
	char records_boot_id[40];
	struct identities *identities; /* identities.c; NULL until used */
};

/* The wall clock, Unix ms: times shown and stored. */
int64_t now_ms(void);
/* CLOCK_BOOTTIME in ms: intervals and deadlines. It never jumps, and it is
 * the clock of a process's start time in /proc/<pid>/stat. */
int64_t boot_ms(void);
/* A past wall-clock time on the boot clock (0 stays 0; a time in the future
 * counts as now, one before the boot as the boot). */
int64_t boot_from_wall(int64_t wall_ms);

/* reconcile.c */
void reconcile(struct daemon *d);
struct module_rt *module_find(struct daemon *d, const char *name);
/* A new record with a new generation id (NULL when out of memory). */
struct module_rt *module_new(struct daemon *d, const char *name);
/* Takes back instances left running by an earlier daemon. */
void reattach_all(struct daemon *d);
/* A shim's pidfd became readable, or a child exited. */
void module_shim_exited(struct daemon *d, struct module_rt *m);
void pull_child_exited(struct daemon *d, pid_t pid, int status);
/* Stops every module in reverse startup order (SIGTERM of the daemon). */
void stop_all(struct daemon *d);
/* Restarts a module. A running one is asked to stop, and reply_fd (a CLI
 * connection, or -1) gets the answer once it has: 1 then (reply_fd is the
 * module's now), 0 when done at once, -1 with err. */
int module_restart(struct daemon *d, const char *name, int reply_fd, struct berr *err);
/* Sooner of: next backoff expiry, next token refresh (on the boot clock). */
int64_t reconcile_next_deadline(struct daemon *d);

/* record.c: <root>/agent/modules.json and the last applied deployment. */
int records_load(struct daemon *d, struct berr *err);
int records_save(struct daemon *d, struct berr *err);
int deployment_save(struct daemon *d, const char *text, size_t len, const char *source,
		    struct berr *err);
/* Loads the deployment to start with (see daemon.c), or none. */
int deployment_initial(struct daemon *d, struct berr *err);
/* Validates text and, when valid, makes it the applied deployment. */
int deployment_apply(struct daemon *d, const char *text, size_t len, const char *what,
		     const char *source, struct deployment **applied, struct berr *err);

/* identity.c */
void generation_id_new(char out[GENERATION_ID_LEN + 1]);
int module_token(struct daemon *d, const struct module_rt *m, int64_t ttl_secs, char *out,
		 size_t cap, struct berr *err);
/* Writes <run>/modules/<name>/token; schedules the next refresh. */
int module_token_refresh(struct daemon *d, struct module_rt *m, struct berr *err);
int module_runtime_dir(struct daemon *d, const char *name, char *out, size_t cap);
void module_runtime_dir_remove(struct daemon *d, const char *name);

/* hubproc.c */
int hub_setup(struct daemon *d, struct berr *err);
int hub_write_config(struct daemon *d, struct berr *err);
void hub_tick(struct daemon *d);
void hub_child_exited(struct daemon *d, int status);
void hub_shutdown(struct daemon *d);

/* identities.c: module identities in IoT Hub (agent/identities.h). */
/* Whether name's identity exists upstream with the keys of generation_id
 * (always, without upstream.identities "iothub"). */
bool identity_ready(struct daemon *d, const char *name, const char *generation_id);
/* Starts a `berth identities` child when there is work and no backoff. */
void identities_tick(struct daemon *d);
int64_t identities_next_deadline(struct daemon *d);
/* True when pid was that child (its results are applied). */
bool identities_child_exited(struct daemon *d, pid_t pid, int status);
/* "identities", "identities_wanted", "identities_ready", ... for list and check. */
void identities_gen_status(struct daemon *d, yajl_gen g);
void identities_free(struct daemon *d);

/* control.c */
int control_listen(struct daemon *d, struct berr *err);
void control_accept(struct daemon *d);
void control_client_ready(struct daemon *d, int fd);
/* Closes connections past their deadline; returns the next deadline (boot
 * clock). */
int64_t control_sweep(struct daemon *d, int64_t now);
/* Answers a request whose answer was deferred, and closes its connection:
 * 200 when error is NULL. */
void control_finish(int fd, int status, const char *error);

/* daemon.c */
void daemon_watch_fd(struct daemon *d, int fd, uint32_t tag);
void daemon_unwatch_fd(struct daemon *d, int fd);
/* Starts a berth child with a clean signal state: stdout and stderr to the
 * given fds (-1: the daemon's), pass_fd (if >= 0) as fd 3. It gets SIGTERM
 * when the daemon dies. With hup_blocked, SIGHUP starts blocked: a SIGHUP
 * sent before the child set up its own handling (the hub's signalfd) then
 * waits for it instead of killing it. */
pid_t daemon_spawn(char *const argv[], int out_fd, int err_fd, int pass_fd, bool hup_blocked);
/* Writes an answer to a client, giving up after timeout_ms in all: a client
 * that does not read loses its answer instead of stalling the daemon.
 * 0 when all was sent. */
int send_bounded(int fd, const void *buf, size_t len, int timeout_ms);

/* workload_server.c */
int workload_listen(struct daemon *d, struct berr *err);
void workload_accept(struct daemon *d);
void workload_client_ready(struct daemon *d, int fd);
/* Closes connections past their deadline; returns the next deadline (both
 * on the boot clock). */
int64_t workload_sweep(struct daemon *d, int64_t now);

enum watch_tag { TAG_SIGNAL = 1, TAG_CONTROL, TAG_CLIENT, TAG_PIDFD, TAG_WORKLOAD, TAG_WCLIENT };

#endif
