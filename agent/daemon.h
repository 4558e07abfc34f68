/* Private to agent/: the daemon's state, shared by its parts (daemon.c: the
 * event loop and signals; reconcile.c: desired against actual, with
 * modules.c, pull_child.c, instance_spec.c and stop.c; deploy.c: applying a
 * deployment; identity.c: generation ids and tokens; hubproc.c: the hub
 * process; control.c: the CLI socket; workload_server.c: the workload API;
 * record.c: what survives a restart). */
#ifndef BERTH_AGENT_DAEMON_H
#define BERTH_AGENT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "agent/config.h"
#include "agent/deployment.h"
#include "agent/status.h"
#include "common/clock.h"
#include "common/digest.h"
#include "common/err.h"
#include "shim/shim.h"

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
struct netstate;

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
	int restart_waiter; /* who waits for a `berth restart` (module_restart); -1 */
	/* Wall clock: a token expires by the wall clock, so a jump forward
	 * makes it due at once. */
	int64_t token_refresh_ms;
	bool done;	 /* exited, and the policy does not restart it */
	int workload_fd; /* its workload socket, listening; -1 */
	/* The grace period its instance was started with (for a module that
	 * left the deployment); 0: unknown. */
	int stop_grace_sec;
	/* For metrics, since this daemon started (boot clock). */
	uint64_t starts, stops;	    /* asked of its shim */
	int64_t ran_ms;		    /* of runs that ended */
	int64_t desired_since_boot; /* first seen desired running; 0: not yet */
};

/* The edge CA's and the gateway certificate's validity (Unix seconds) and
 * the SHA-256 of the files they were read from (gateway.c). */
struct edge_state {
	char ca_sha256[65];
	int64_t ca_not_before, ca_not_after;
	char gw_name[HOSTNAME_MAX + 1];
	char gw_sha256[65], gw_ca_sha256[65];
	int64_t gw_not_before, gw_not_after;
	int64_t next_check_ms; /* wall clock; 0: not set up */
};

struct hub_proc {
	pid_t pid;
	int listen_fd; /* <run>/hub.sock, created once by the daemon */
	unsigned restart_count;
	int64_t next_start_boot;
	int64_t started_boot;
	bool config_dirty; /* hub config rewritten: SIGHUP due */
};

/* cloud.c: the deployment from the $edgeAgent and $edgeHub twins. */
struct cloud_state {
	bool due;		 /* the hub said the twins changed (SIGUSR1) */
	int64_t next_fetch_boot; /* the twins are read again by then anyway */
	long long agent_version; /* desired versions last acted on; 0: none */
	long long hub_version;
	int status_code; /* lastDesiredStatus; 0: nothing to report yet */
	char status_description[1024];
	bool report_due;
	int64_t next_report_boot;
	char *last_agent_report, *last_hub_report; /* the requests last sent */
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
	struct netstate *net; /* module networks (network.c) */

	struct hub_proc hub;
	struct edge_state edge;
	int epfd;
	int sigpipe[2];
	int control_fd;
	int metrics_fd;		  /* metrics_listen; -1: off */
	int64_t started_boot;	  /* when this daemon started */
	char instance_number[37]; /* a GUID for this daemon's metrics, as edgeAgent's */
	bool stopping;
	bool reconcile_due;
	int64_t next_reconcile_boot;
	int64_t trim_boot; /* give back memory the last burst of work used; 0: none due */
	/* The kernel's boot id now, and the one the records were written in:
	 * instances of an earlier boot ended with it, they did not fail. */
	char boot_id[40];
	char records_boot_id[40];
	/* Answers a restart someone waits for (module_restart): the waiter's
	 * token, and 200 with NULL or the status and why. control.c sets it. */
	void (*restart_done)(int waiter, int status, const char *error);
	struct identities *identities; /* identities.c; NULL until used */
	struct cloud_state cloud;
};

/* modules.c: the module table */
struct module_rt *module_find(struct daemon *d, const char *name);
/* A record for name (NULL when out of memory); module_new() also gives it a
 * new generation id, module_add() leaves that to the caller. */
struct module_rt *module_add(struct daemon *d, const char *name);
struct module_rt *module_new(struct daemon *d, const char *name);
/* The module as the applied deployment wants it; NULL when it is not there. */
const struct deployment_module *module_desired(struct daemon *d, const char *name);
/* Seconds between SIGTERM and SIGKILL: createOptions StopTimeout, else (a
 * module no longer deployed) what its instance was started with, else the
 * config's stop_grace_secs. */
int module_stop_grace(struct daemon *d, const char *name);
/* Watches the shim with a pidfd, readable once it has exited (our child or
 * not): -1 when it is gone already. */
int module_watch_shim(struct daemon *d, struct module_rt *m, pid_t pid);
void module_unwatch_shim(struct daemon *d, struct module_rt *m);

/* reconcile.c */
void reconcile(struct daemon *d);
/* Takes back instances left running by an earlier daemon. */
void reattach_all(struct daemon *d);
/* A shim's pidfd became readable. */
void module_shim_exited(struct daemon *d, struct module_rt *m);
/* Sooner of: next backoff expiry, next token refresh (on the boot clock). */
int64_t reconcile_next_deadline(struct daemon *d);

/* pull_child.c */
void pull_start(struct daemon *d, struct module_rt *m, const struct deployment_module *dm);
void pull_child_exited(struct daemon *d, pid_t pid, int status);
/* Removes the files of the module's last pull. */
void pull_files_remove(struct daemon *d, const char *name);

/* instance_spec.c: what the module's instance is started with. */
struct oci_image;
struct instance_spec *module_instance_spec(struct daemon *d, struct module_rt *m,
					   const struct deployment_module *dm,
					   const struct oci_image *img, struct berr *err);

/* stop.c */
/* Asks the module's shim to stop its instance and returns at once; true
 * while the instance still runs (its exit arrives on the pidfd). */
bool module_stop_begin(struct daemon *d, struct module_rt *m, const char *why);
/* A shim that outlived its grace period: force it (this waits, briefly). */
void module_stop_force(struct daemon *d, struct module_rt *m);
/* Stops the instance and waits for it: for the daemon's own exit only. */
void module_stop_wait(struct daemon *d, struct module_rt *m);
/* Stops and removes the instance: directory, cgroup, lease. The identity
 * (generation id, token directory) is kept. */
void module_instance_destroy(struct daemon *d, struct module_rt *m);
/* Restarts a module. A running one is asked to stop, and `waiter` (>= 0: a
 * token of whoever waits, -1: nobody) is given to d->restart_done once it
 * has: 1 then, 0 when done at once, -1 with err. */
NODISCARD int module_restart(struct daemon *d, const char *name, int waiter, struct berr *err);
/* Tells the waiter of a restart, if any, how it ended (200 and NULL: the
 * module stopped and starts again). */
void module_restart_answer(struct daemon *d, struct module_rt *m, int status, const char *error);
/* Stops every module in reverse startup order (SIGTERM of the daemon). */
void stop_all(struct daemon *d);
/* When modules keep running past the daemon's exit: the stops already
 * asked for (a module removed, stopped, restarting) are finished, so their
 * networks go with them instead of at the next start. */
void stop_pending(struct daemon *d);

/* record.c: <root>/agent/modules.json and the last applied deployment. */
/* A state file of the daemon's, <root>/<name> ("agent/modules.json"),
 * written whole from g (freed either way) so that a reader finds the old
 * or the new one, mode 0600; `what` names it in errors. */
NODISCARD int daemon_state_save(struct daemon *d, const char *name, yajl_gen g, const char *what,
				struct berr *err);
/* Such a file, of at most max bytes, parsed: 0 with *doc NULL when there
 * is none. */
NODISCARD int daemon_state_load(struct daemon *d, const char *name, size_t max, yajl_val *doc,
				struct berr *err);
NODISCARD int records_load(struct daemon *d, struct berr *err);
NODISCARD int records_save(struct daemon *d, struct berr *err);
/* records_save(), logging a failure: the state in memory is right, and the
 * next save tries again. */
void records_save_or_log(struct daemon *d);
/* Keeps the text of the applied deployment and where it came from ("cli",
 * "file" or "saved"). */
NODISCARD int deployment_record(struct daemon *d, const char *text, size_t len, const char *source,
				struct berr *err);
/* The last applied deployment (*text NULL when there is none) and, when it
 * came from the deployment file, that file's hash (else ""). */
void deployment_recorded(struct daemon *d, char **text, size_t *len, char file_hash[17]);
/* The hash deployment_recorded() gives for a deployment file's text. */
void deployment_file_hash(const char *text, size_t len, char out[17]);

/* deploy.c: making a deployment the daemon's */
/* Validates text and, when valid, makes it the applied deployment. */
NODISCARD int deployment_apply(struct daemon *d, const char *text, size_t len, const char *what,
			       const char *source, struct deployment **applied, struct berr *err);
/* At start: the deployment file when it changed since it was last applied,
 * else the last applied deployment, or none. */
NODISCARD int deployment_initial(struct daemon *d, struct berr *err);
/* SIGHUP: the deployment file again; a bad one leaves the running one. */
void deployment_reload(struct daemon *d);

/* identity.c */
void generation_id_new(char out[GENERATION_ID_LEN + 1]);
NODISCARD int module_token(struct daemon *d, const struct module_rt *m, int64_t ttl_secs, char *out,
			   size_t cap, struct berr *err);
/* Writes <run>/modules/<name>/token; schedules the next refresh. */
NODISCARD int module_token_refresh(struct daemon *d, struct module_rt *m, struct berr *err);
int module_runtime_dir(struct daemon *d, const char *name, char *out, size_t cap);
void module_runtime_dir_remove(struct daemon *d, const char *name);

/* hubproc.c: the hub as the daemon's child process */
/* Creates <run>/hub.sock (kept across hub restarts) and the hub's config. */
NODISCARD int hubproc_setup(struct daemon *d, struct berr *err);
/* Writes <run>/hub.json from the config and the deployment; SIGHUP to a
 * running hub. */
NODISCARD int hubproc_write_config(struct daemon *d, struct berr *err);
/* Starts the hub when it is due (at first, and after its backoff). */
void hubproc_tick(struct daemon *d);
void hubproc_exited(struct daemon *d, int status);
void hubproc_shutdown(struct daemon *d);

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

/* cloud.c: with "deployments": "cloud" */
/* Reads the twins when told or due, applies a new deployment, reports. */
void cloud_tick(struct daemon *d);
int64_t cloud_next_deadline(struct daemon *d);
/* SIGUSR1 from the hub: the twins changed. */
void cloud_wake(struct daemon *d);
void cloud_free(struct daemon *d);
/* Why a local deployment is refused, or NULL when it is not. */
const char *cloud_refusal(struct daemon *d);

/* control.c */
NODISCARD int control_listen(struct daemon *d, struct berr *err);
void control_accept(struct daemon *d);
void control_client_ready(struct daemon *d, int fd);
/* Closes connections past their deadline; returns the next deadline (boot
 * clock). */
int64_t control_sweep(struct daemon *d, int64_t now);

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

/* gateway.c: the edge CA, the gateway's certificate and addresses */
/* Makes or renews the CA and the gateway's certificate when due (at start,
 * then edge_tick() when edge_next_deadline() comes). A renewed CA restarts
 * the running modules; a new certificate is handed to the hub. */
NODISCARD int edge_setup(struct daemon *d, struct berr *err);
/* The work itself, at a given time (Unix seconds): `berth edgeca`, which
 * the daemon runs as a child when state.json says something is due, and
 * tests. *renewed: a new CA replaced one modules trusted; *changed: a new
 * gateway certificate. */
NODISCARD int edge_check(struct daemon *d, int64_t now, bool *renewed, bool *changed,
			 struct berr *err);
void edge_tick(struct daemon *d);
int64_t edge_next_deadline(struct daemon *d); /* boot clock */
void edge_dir(struct daemon *d, char *out, size_t cap);
/* The CA in use: the operator's edge_ca, else the quickstart CA's files. */
void edge_ca_paths(struct daemon *d, char *cert, char *key, size_t cap);
/* The certificates modules trust (the CA's chain, then trust_bundle), or
 * with manifest those of manifest_trust_bundle ("" when not configured). */
NODISCARD int edge_trust_bundle(struct daemon *d, bool manifest, char **pem, struct berr *err);
/* IOTEDGE_GATEWAYHOSTNAME: gateway_hostname, else the host's name. */
const char *gateway_hostname(struct daemon *d, char buf[HOSTNAME_MAX + 1]);
bool gateway_on(struct daemon *d);
#define GATEWAY_ADDR_MAX 64 /* an address as text, with its NUL */
/* The addresses the hub listens on for modules (without ports): the
 * gateway address for host-network modules, then the bridge's address of
 * each bridge network the deployment uses, where modules on it find the
 * hub (network.c). */
size_t gateway_listen_addresses(struct daemon *d, char (*out)[GATEWAY_ADDR_MAX], size_t cap);
/* The address the gateway name resolves to, first in the /etc/hosts of an
 * instance on the host's network; NULL: none (no network, or no gateway).
 * On a bridge network the name is one of the network's own /etc/hosts
 * lines (network.c), the bridge's address, kept when they are rewritten. */
const char *gateway_instance_address(struct daemon *d, enum net_mode network);
/* The hub config's "gateway" member (hub/hub.h). */
void gateway_hub_config(struct daemon *d, yajl_gen g);

/* workload_server.c: the workload API, a socket per module */
/* <run>/modules/<name>/iotedge, which holds it (mounted at /var/run/iotedge). */
int workload_socket_dir(struct daemon *d, const char *name, char *out, size_t cap);
NODISCARD int workload_module_open(struct daemon *d, struct module_rt *m, struct berr *err);
void workload_module_close(struct daemon *d, struct module_rt *m);
void workload_accept(struct daemon *d, int listen_fd);
void workload_client_ready(struct daemon *d, int fd);
/* Closes connections past their deadline; returns the next deadline (both
 * on the boot clock). */
int64_t workload_sweep(struct daemon *d, int64_t now);

enum watch_tag {
	TAG_SIGNAL = 1,
	TAG_CONTROL,
	TAG_CLIENT,
	TAG_PIDFD,
	TAG_WORKLOAD,
	TAG_WCLIENT,
	TAG_METRICS,
	TAG_MCLIENT,
	TAG_MHUB,
};

#endif
