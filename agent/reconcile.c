/* Desired (the applied deployment) against actual (the instances): pull,
 * create, start, stop, remove; the restart policy with edgeAgent's backoff;
 * startup order. Runs every reconcile interval and after every event. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/workload.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "oci/oci.h"
#include "shim/shim.h"

#define PULL_OUTPUT_MAX 4096
/* A shim gets this much beyond the grace period to report an exit before
 * the daemon forces the stop. */
#define STOP_SLACK_MS 5000

struct module_rt *module_find(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_mods; i++)
		if (!strcmp(d->mods[i]->name, name))
			return d->mods[i];
	return NULL;
}

struct module_rt *module_new(struct daemon *d, const char *name)
{
	struct module_rt *m = calloc(1, sizeof(*m));
	struct module_rt **mods = realloc(d->mods, (d->n_mods + 1) * sizeof(*mods));
	if (!m || !mods) {
		free(m);
		if (mods)
			d->mods = mods;
		return NULL;
	}
	d->mods = mods;
	d->mods[d->n_mods++] = m;
	snprintf(m->name, sizeof(m->name), "%s", name);
	/* A module created from nothing gets a new identity generation: tokens
	 * made for an earlier module of the same name stop working. */
	generation_id_new(m->generation_id);
	m->pidfd = -1;
	m->restart_reply_fd = -1;
	m->status = RT_UNKNOWN;
	return m;
}

static void save(struct daemon *d)
{
	struct berr err;
	if (records_save(d, &err) < 0)
		log_error("saving module records: %s", err.msg);
}

static void unwatch_shim(struct daemon *d, struct module_rt *m)
{
	if (m->pidfd >= 0) {
		daemon_unwatch_fd(d, m->pidfd);
		close(m->pidfd);
		m->pidfd = -1;
	}
	m->shim_pid = 0;
}

/* Watches the shim with a pidfd: readable once it has exited, whether or
 * not it is our child. Returns -1 when it is already gone. */
static int watch_shim(struct daemon *d, struct module_rt *m, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	m->shim_pid = pid;
	m->pidfd = fd;
	daemon_watch_fd(d, fd, TAG_PIDFD);
	return 0;
}

static const struct deployment_module *desired(struct daemon *d, const char *name)
{
	return d->dep ? deployment_module(d->dep, name) : NULL;
}

/* What follows an exit the daemon saw (or found after its own restart):
 * `when` is the exit's wall-clock time as the shim recorded it (0: now). */
static void observe_exit(struct daemon *d, struct module_rt *m, int exit_code, int64_t when)
{
	unwatch_shim(d, m);
	m->exit_code = exit_code;
	m->last_exit_ms = when > 0 ? when : wall_ms();
	m->exited_boot = when > 0 ? boot_from_wall(when) : boot_ms();
	if (m->exited_boot < m->started_boot)
		m->exited_boot = m->started_boot;
	const struct deployment_module *dm = desired(d, m->name);
	bool asked = m->stopping;
	m->stopping = false;
	if (m->restart_requested) {
		/* Started again at once, as a new run: a user's restart is no
		 * crash, and it gives a failed module its restarts back. */
		m->restart_count = 0;
		m->status = RT_BACKOFF;
		m->next_start_boot = 0;
		m->done = false;
		snprintf(m->description, sizeof(m->description), "restarting");
		if (m->restart_reply_fd >= 0) {
			control_finish(m->restart_reply_fd, 200, NULL);
			m->restart_reply_fd = -1;
		}
		save(d);
		return;
	}
	if (asked || !dm || !dm->run) {
		/* A stop the daemon asked for is not a failure: no restart policy. */
		m->status = RT_STOPPED;
		m->done = false;
		m->description[0] = '\0';
		m->status = RT_STOPPED;
		save(d);
		return;
	}
	if (m->started_boot && m->exited_boot - m->started_boot >= HEALTHY_RESET_MS)
		m->restart_count = 0;
	m->status = status_after_exit(dm->restart, exit_code, m->restart_count);
	if (m->status == RT_BACKOFF) {
		int64_t delay = backoff_delay_ms(d->cfg->restart_backoff_unit_ms, m->restart_count);
		m->next_start_boot = m->exited_boot + delay;
		log_info("module %s exited with %d; restart %u in %lld ms", m->name, exit_code,
			 m->restart_count + 1, (long long)delay);
	} else {
		m->done = true;
		log_info("module %s exited with %d; %s (restartPolicy %s%s)", m->name, exit_code,
			 runtime_status_name(m->status), restart_policy_name(dm->restart),
			 m->restart_count >= RESTARTS_MAX ? ", too many restarts" : "");
	}
	m->description[0] = '\0';
	save(d);
}

void module_shim_exited(struct daemon *d, struct module_rt *m)
{
	struct instance_state st;
	struct berr err;
	int code = 255;
	int64_t when = 0;
	if (shim_state_read(d->root, m->name, &st, &err) == 0) {
		if (shim_alive(&st)) {
			/* A stale event (the descriptor number was reused) or a shim
			 * started again under our name: watch whichever is alive. */
			if (st.shim_pid != m->shim_pid) {
				unwatch_shim(d, m);
				watch_shim(d, m, st.shim_pid);
			}
			return;
		}
		code = st.status == INSTANCE_EXITED ? st.exit_code : 255;
		when = st.finished_at;
	} else {
		log_warn("module %s: %s", m->name, err.msg);
	}
	observe_exit(d, m, code, when);
	d->reconcile_due = true;
}

/* When the shim started, on the boot clock: /proc/<pid>/stat counts a
 * process's start in clock ticks since boot. */
static int64_t boot_of_ticks(int64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);
	return ticks > 0 && hz > 0 ? ticks * 1000 / hz : 0;
}

void reattach_all(struct daemon *d)
{
	bool rebooted =
	    d->boot_id[0] && d->records_boot_id[0] && strcmp(d->boot_id, d->records_boot_id);
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		m->token_refresh_ms = 0;
		struct instance_state st;
		struct berr err;
		if (!m->has_instance) {
			/* Its record was lost (a damaged modules.json) while its
			 * instance ran on: take the instance back, and create it
			 * again since what it was made from is unknown. */
			if (shim_state_read(d->root, m->name, &st, &err) < 0 || !shim_alive(&st))
				continue;
			log_warn("module %s: a running instance without a record; it will be "
				 "created again",
				 m->name);
			m->has_instance = true;
			m->config_hash[0] = '\0';
		}
		if (shim_state_read(d->root, m->name, &st, &err) == 0 && shim_alive(&st) &&
		    (st.status == INSTANCE_RUNNING || st.status == INSTANCE_CREATED) &&
		    watch_shim(d, m, st.shim_pid) == 0) {
			log_info("module %s: re-attached to running instance (shim %d)", m->name,
				 (int)st.shim_pid);
			m->status = RT_RUNNING;
			m->started_here = true;
			if (!m->last_start_ms)
				m->last_start_ms = st.started_at;
			m->started_boot = boot_of_ticks(st.shim_start_time);
			if (!m->started_boot)
				m->started_boot = boot_from_wall(st.started_at);
			continue;
		}
		if (m->status == RT_RUNNING && rebooted) {
			/* Not a failure: it ended with the system. It starts again at
			 * once, in place, and no restart is counted. */
			log_info("module %s: the system restarted since it ran; starting it again",
				 m->name);
			m->status = RT_UNKNOWN;
			m->next_start_boot = 0;
			m->done = false;
			continue;
		}
		if (m->status == RT_RUNNING) {
			/* It exited while no daemon was watching: the policy decides. */
			bool readable = shim_state_read(d->root, m->name, &st, &err) == 0 &&
					st.status == INSTANCE_EXITED;
			log_info("module %s exited while the daemon was down", m->name);
			observe_exit(d, m, readable ? st.exit_code : 255,
				     readable ? st.finished_at : 0);
		}
	}
	save(d);
}

static int grace_of(struct daemon *d, const char *name)
{
	const struct deployment_module *dm = desired(d, name);
	if (dm && dm->create.stop_timeout >= 0)
		return dm->create.stop_timeout;
	return (int)d->cfg->stop_grace_secs;
}

/* Stops the instance and waits for it: for the daemon's own exit only. */
static void instance_stop(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	if (!m->has_instance)
		return;
	if (shim_stop(d->root, m->name, grace_of(d, m->name), &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	unwatch_shim(d, m);
	m->stopping = false;
}

/* Asks the module's shim to stop its instance and returns at once, so a
 * module taking its grace period holds up nothing else; the exit arrives on
 * the pidfd. True while the instance still runs. */
static bool stop_begin(struct daemon *d, struct module_rt *m, const char *why)
{
	if (!m->shim_pid)
		return false;
	if (m->stopping)
		return true;
	int grace = grace_of(d, m->name);
	struct berr err;
	log_info("module %s: stopping (%s)", m->name, why);
	if (shim_stop_request(d->root, m->name, grace, &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	m->stopping = true;
	m->stop_deadline_boot = boot_ms() + grace * 1000LL + STOP_SLACK_MS;
	snprintf(m->description, sizeof(m->description), "stopping");
	return true;
}

/* A shim that outlived its grace period: force it (this waits, briefly). */
static void stop_force(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	log_warn("module %s: still running %d s after the stop request; killing it", m->name,
		 grace_of(d, m->name));
	if (shim_stop(d->root, m->name, 0, &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	m->stop_deadline_boot = boot_ms() + STOP_SLACK_MS;
	module_shim_exited(d, m);
}

/* Stops and removes the instance: directory (upper, work, logs), cgroup,
 * lease. The identity (generation id, token directory) is kept. */
static void instance_destroy(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	instance_stop(d, m);
	if (m->has_instance && shim_remove(d->root, m->name, &err) < 0)
		log_error("module %s: remove: %s", m->name, err.msg);
	if (d->store && oci_lease_remove(d->store, m->name, &err) < 0)
		log_warn("module %s: lease: %s", m->name, err.msg);
	m->has_instance = false;
}

static void pull_files(struct daemon *d, const char *name, char *out, size_t cap,
		       const char *suffix)
{
	snprintf(out, cap, "%s/pulls/%s.%s", d->run, name, suffix);
}

static void pull_files_remove(struct daemon *d, const char *name)
{
	static const char *const sfx[] = {"out", "err", "json"};
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		char p[4300];
		pull_files(d, name, p, sizeof(p), sfx[i]);
		unlink(p);
	}
}

static void module_drop(struct daemon *d, struct module_rt *m)
{
	if (m->pull_pid > 0)
		kill(m->pull_pid, SIGTERM);
	if (stop_begin(d, m, "removed from the deployment"))
		return; /* dropped once it has exited */
	if (m->restart_reply_fd >= 0)
		control_finish(m->restart_reply_fd, 404,
			       "the module was removed from the deployment");
	instance_destroy(d, m);
	module_runtime_dir_remove(d, m->name);
	pull_files_remove(d, m->name);
	log_info("module %s removed", m->name);
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i] == m) {
			memmove(&d->mods[i], &d->mods[i + 1],
				(d->n_mods - i - 1) * sizeof(*d->mods));
			d->n_mods--;
			break;
		}
	free(m);
	save(d);
}

/* Credentials for the image's registry: the deployment's
 * registryCredentials first, then the daemon config's registries. */
static int write_pull_config(struct daemon *d, const struct deployment_module *dm, const char *path,
			     bool *insecure, bool *written)
{
	char host[HOSTNAME_MAX + 1];
	image_ref_registry(dm->image, host, sizeof(host));
	const struct registry_cred *c = agent_config_registry(d->cfg, dm->image);
	const struct registry_cred *dc = NULL;
	for (size_t i = 0; d->dep && i < d->dep->n_registries; i++)
		if (!strcmp(d->dep->registries[i].host, host))
			dc = &d->dep->registries[i];
	*insecure = c && c->insecure;
	*written = false;
	const char *user = dc ? dc->username : c ? c->username : NULL;
	const char *pass = dc ? dc->password : c ? c->password : NULL;
	const char *ca = c ? c->ca_file : NULL;
	if (!user && !ca && !*insecure)
		return 0;
	yajl_gen g = json_gen_new(false);
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_str(g, "registries");
	yajl_gen_map_open(g);
	json_gen_str(g, host);
	yajl_gen_map_open(g);
	if (*insecure)
		json_gen_key_bool(g, "insecure", true);
	if (user) {
		json_gen_key_str(g, "username", user);
		json_gen_key_str(g, "password", pass);
	}
	if (ca)
		json_gen_key_str(g, "ca_file", ca);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	size_t len = 0;
	cleanup_free char *text = json_gen_finish(g, &len);
	yajl_gen_free(g);
	struct berr err;
	if (!text || fs_write_file_atomic(path, text, len, 0600, &err) < 0)
		return -1;
	*written = true;
	return 0;
}

/* Pulls run as `berth pull` children so the daemon never maps the HTTP and
 * archive libraries; their output goes to files read when they exit. */
static void pull_start(struct daemon *d, struct module_rt *m, const struct deployment_module *dm)
{
	char dir[4200], out[4300], errp[4300], cfgp[4300];
	snprintf(dir, sizeof(dir), "%s/pulls", d->run);
	struct berr err;
	if (fs_mkdir_p(dir, 0700, &err) < 0) {
		log_error("module %s: %s", m->name, err.msg);
		return;
	}
	pull_files(d, m->name, out, sizeof(out), "out");
	pull_files(d, m->name, errp, sizeof(errp), "err");
	pull_files(d, m->name, cfgp, sizeof(cfgp), "json");
	bool insecure = false, with_config = false;
	if (write_pull_config(d, dm, cfgp, &insecure, &with_config) < 0) {
		log_error("module %s: cannot write the pull configuration %s", m->name, cfgp);
		return;
	}
	cleanup_close int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cleanup_close int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0 || efd < 0) {
		log_error("module %s: cannot create %s", m->name, out);
		return;
	}
	const char *argv[12];
	size_t n = 0;
	argv[n++] = berth_self_exe();
	argv[n++] = "--root";
	argv[n++] = d->root;
	argv[n++] = "pull";
	if (insecure)
		argv[n++] = "--insecure";
	if (with_config) {
		argv[n++] = "--config";
		argv[n++] = cfgp;
	}
	argv[n++] = dm->image;
	argv[n] = NULL;
	pid_t pid = daemon_spawn((char *const *)argv, ofd, efd, -1, false);
	if (pid < 0) {
		log_error("module %s: cannot start berth pull: %s", m->name, strerror(errno));
		return;
	}
	m->pull_pid = pid;
	snprintf(m->pulling, sizeof(m->pulling), "%s", dm->image);
	snprintf(m->description, sizeof(m->description), "pulling %.200s", dm->image);
	log_info("module %s: pulling %s", m->name, dm->image);
}

/* Last non-empty line of a small file. */
static void last_line(const char *path, char *out, size_t cap)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	out[0] = '\0';
	if (fs_read_file(path, 1024 * 1024, &text, &len, &err) < 0)
		return;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	snprintf(out, cap, "%s", nl ? nl + 1 : text);
}

void pull_child_exited(struct daemon *d, pid_t pid, int status)
{
	struct module_rt *m = NULL;
	for (size_t i = 0; i < d->n_mods && !m; i++)
		if (d->mods[i]->pull_pid == pid)
			m = d->mods[i];
	if (!m)
		return;
	m->pull_pid = 0;
	char out[4300], errp[4300], line[PULL_OUTPUT_MAX];
	pull_files(d, m->name, out, sizeof(out), "out");
	pull_files(d, m->name, errp, sizeof(errp), "err");
	last_line(out, line, sizeof(line));
	const struct deployment_module *dm = desired(d, m->name);
	if (dm && strcmp(dm->image, m->pulling)) {
		/* The deployment changed the image meanwhile: pull the new one. */
		log_info("module %s: image changed while %s was pulled", m->name, m->pulling);
		m->description[0] = '\0';
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && digest_is_valid(line)) {
		snprintf(m->image_digest, sizeof(m->image_digest), "%s", line);
		m->description[0] = '\0';
		if (m->pull_failed && m->status == RT_BACKOFF)
			m->status = RT_UNKNOWN; /* the failed pulls were counted already */
		m->pull_failed = false;
		log_info("module %s: pulled %s (%s)", m->name, dm ? dm->image : "?", line);
	} else {
		last_line(errp, line, sizeof(line));
		if (!line[0])
			snprintf(line, sizeof(line), "berth pull ended with status %d", status);
		snprintf(m->description, sizeof(m->description), "%.250s", line);
		log_error("module %s: %s", m->name, line);
		m->pull_failed = true;
		/* Retried with the same backoff as a crash. */
		m->status = RT_BACKOFF;
		m->last_exit_ms = wall_ms();
		m->exited_boot = boot_ms();
		m->next_start_boot =
		    m->exited_boot +
		    backoff_delay_ms(d->cfg->restart_backoff_unit_ms, m->restart_count);
		if (m->restart_count < RESTARTS_MAX)
			m->restart_count++;
		else {
			m->status = RT_FAILED;
			m->done = true;
		}
		save(d);
	}
	pull_files_remove(d, m->name);
	d->reconcile_due = true;
}

/* Sets KEY=value, replacing an earlier KEY. */
static int env_set(char ***envp, const char *key, const char *value)
{
	char *kv = NULL;
	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return -1;
	int rc = strv_env_set(envp, kv);
	free(kv);
	return rc;
}

/* Image env, then createOptions Env, then the module's env, then the
 * identity variables, which a manifest cannot override. */
static int build_env(struct daemon *d, struct module_rt *m, const struct deployment_module *dm,
		     const struct oci_image *img, struct instance_spec *spec)
{
	for (char **e = img->env; e && *e; e++)
		if (strchr(*e, '=') && strv_env_set(&spec->env, *e) < 0)
			return -1;
	for (char **e = dm->create.env; e && *e; e++)
		if (strv_env_set(&spec->env, *e) < 0)
			return -1;
	for (size_t i = 0; i < dm->n_env; i++)
		if (env_set(&spec->env, dm->env[i].key, dm->env[i].value) < 0)
			return -1;
	char host[256];
	const char *gw = d->cfg->gateway_hostname;
	if (!gw) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		gw = host;
	}
	const struct {
		const char *k, *v;
	} ids[] = {
	    {"IOTEDGE_DEVICEID", d->cfg->device_id},
	    {"IOTEDGE_MODULEID", m->name},
	    {"IOTEDGE_IOTHUBHOSTNAME", d->cfg->iothub_hostname},
	    {"IOTEDGE_GATEWAYHOSTNAME", gw},
	    {"IOTEDGE_MODULEGENERATIONID", m->generation_id},
	    {"IOTEDGE_AUTHSCHEME", "sasToken"},
	    {"BERTH_HUB_SOCKET", MODULE_HUB_SOCKET},
	    {"BERTH_TOKEN_FILE", MODULE_TOKEN_FILE},
	    {"IOTEDGE_WORKLOADURI", "unix://" MODULE_RUN_DIR "/" WORKLOAD_SOCKET},
	    {"IOTEDGE_APIVERSION", WORKLOAD_API_VERSION},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		if (env_set(&spec->env, ids[i].k, ids[i].v) < 0)
			return -1;
	return 0;
}

static int add_bind(struct instance_spec *spec, const char *src, const char *dst, bool ro)
{
	struct bind_mount *b = realloc(spec->binds, (spec->n_binds + 1) * sizeof(*b));
	if (!b)
		return -1;
	spec->binds = b;
	b = &spec->binds[spec->n_binds];
	memset(b, 0, sizeof(*b));
	b->source = strdup(src);
	b->destination = strdup(dst);
	b->readonly = ro;
	spec->n_binds++;
	return b->source && b->destination ? 0 : -1;
}

static struct instance_spec *build_spec(struct daemon *d, struct module_rt *m,
					const struct deployment_module *dm,
					const struct oci_image *img, struct berr *err)
{
	struct instance_spec *spec = calloc(1, sizeof(*spec));
	if (!spec) {
		berr_set(err, ENOMEM, "instance spec");
		return NULL;
	}
	spec->name = strdup(m->name);
	spec->image_digest = strdup(img->digest);
	spec->layer_dirs = calloc(img->n_layers + 1, sizeof(char *));
	if (!spec->name || !spec->image_digest || !spec->layer_dirs)
		goto nomem;
	for (size_t i = 0; i < img->n_layers; i++)
		if (!(spec->layer_dirs[i] = strdup(img->layer_dirs[i])))
			goto nomem;
	if (create_options_apply(&dm->create, img->entrypoint, img->cmd, spec, err) < 0)
		goto fail;
	if (!spec->cwd && img->working_dir && *img->working_dir &&
	    !(spec->cwd = strdup(img->working_dir)))
		goto nomem;
	if (!spec->user && img->user && *img->user && !(spec->user = strdup(img->user)))
		goto nomem;
	if (build_env(d, m, dm, img, spec) < 0)
		goto nomem;
	char shared[4200], mine[4200];
	snprintf(shared, sizeof(shared), "%s/" SHARED_DIR, d->run);
	module_runtime_dir(d, m->name, mine, sizeof(mine));
	if (add_bind(spec, shared, MODULE_RUN_DIR, true) < 0 ||
	    add_bind(spec, mine, MODULE_RUNTIME_DIR, true) < 0)
		goto nomem;
	spec->stop_grace_sec = grace_of(d, m->name);
	return spec;
nomem:
	berr_set(err, ENOMEM, "instance spec");
fail:
	instance_spec_free(spec);
	return NULL;
}

static void start_failed(struct daemon *d, struct module_rt *m, const char *why)
{
	log_error("module %s: %s", m->name, why);
	/* A start that fails counts as a failed run for the restart policy. */
	m->last_start_ms = 0;
	m->started_boot = 0;
	observe_exit(d, m, 1, 0);
	snprintf(m->description, sizeof(m->description), "%.250s", why);
	save(d);
}

static void instance_start(struct daemon *d, struct module_rt *m,
			   const struct deployment_module *dm)
{
	struct berr err;
	struct oci_image *img = NULL;
	const char *ref = m->image_digest[0] ? m->image_digest : dm->image;
	/* Every attempt after an exit counts, failed starts included, so a
	 * module that cannot start ends up failed instead of retrying forever;
	 * a start `berth restart` asked for does not. */
	if (m->status == RT_BACKOFF && m->last_exit_ms) {
		if (!m->restart_requested)
			m->restart_count++;
		m->last_restart_ms = wall_ms();
	}
	m->restart_requested = false;
	if (!d->store) {
		start_failed(d, m, "the image store is not open");
		return;
	}
	if (oci_image_open(d->store, ref, &img, &err) < 0) {
		char why[BERR_MSG_MAX + 64];
		if (dm->pull == PULL_NEVER && !m->image_digest[0])
			snprintf(why, sizeof(why), "%s (imagePullPolicy is never)", err.msg);
		else
			snprintf(why, sizeof(why), "%s", err.msg);
		m->image_digest[0] = '\0'; /* pulled again on the next try */
		start_failed(d, m, why);
		return;
	}
	struct instance_spec *spec = build_spec(d, m, dm, img, &err);
	if (!spec) {
		oci_image_free(img);
		start_failed(d, m, err.msg);
		return;
	}
	/* The lease keeps gc away from the layers; it fails when a gc took them
	 * since the image was opened, and the image is then pulled again. */
	if (oci_lease_add(d->store, m->name, img->digest, &err) < 0) {
		oci_image_free(img);
		instance_spec_free(spec);
		m->image_digest[0] = '\0';
		start_failed(d, m, err.msg);
		return;
	}
	snprintf(m->image_digest, sizeof(m->image_digest), "%s", img->digest);
	if (module_token_refresh(d, m, &err) < 0)
		log_error("%s", err.msg);
	oci_image_free(img);
	/* Recorded before the shim starts: a daemon killed right after still
	 * knows the instance is its own. */
	snprintf(m->config_hash, sizeof(m->config_hash), "%s", dm->config_hash);
	m->has_instance = true;
	save(d);
	pid_t shim = 0;
	int rc = shim_start(d->root, spec, &shim, &err);
	instance_spec_free(spec);
	if (rc < 0) {
		start_failed(d, m, err.msg);
		return;
	}
	m->last_start_ms = wall_ms();
	m->started_boot = boot_ms();
	m->status = RT_RUNNING;
	m->started_here = true;
	m->done = false;
	m->description[0] = '\0';
	if (watch_shim(d, m, shim) < 0) {
		/* Gone already: the exit is read from its state below. */
		m->shim_pid = shim;
		module_shim_exited(d, m);
	}
	log_info("module %s started (shim %d)", m->name, (int)shim);
	save(d);
}

static void reconcile_module(struct daemon *d, const struct deployment_module *dm,
			     struct module_rt *m, bool gate_open, int64_t now)
{
	if (!m->has_instance && strcmp(m->image, dm->image))
		m->image_digest[0] = '\0'; /* pulled for an image no longer wanted */
	snprintf(m->image, sizeof(m->image), "%s", dm->image);
	if (m->stopping)
		return; /* the next step follows its exit */
	if (m->has_instance && strcmp(m->config_hash, dm->config_hash)) {
		if (stop_begin(d, m, "image, createOptions or env changed"))
			return;
		log_info("module %s: image, createOptions or env changed; creating it again",
			 m->name);
		instance_destroy(d, m);
		m->image_digest[0] = '\0';
		m->restart_count = 0;
		m->status = RT_UNKNOWN;
		m->done = false;
		m->next_start_boot = 0;
		save(d);
	}
	if (m->pull_pid)
		return;
	if (!dm->run) {
		if (stop_begin(d, m, "desired status stopped"))
			return;
		if (m->status != RT_STOPPED) {
			m->status = RT_STOPPED;
			m->done = false;
			save(d);
		}
		return;
	}
	if (m->shim_pid) {
		if (m->restart_count && now - m->started_boot >= HEALTHY_RESET_MS) {
			m->restart_count = 0;
			save(d);
		}
		struct berr err;
		if (m->token_refresh_ms <= wall_ms() && module_token_refresh(d, m, &err) < 0)
			log_error("%s", err.msg);
		return;
	}
	if (m->done)
		return;
	if (m->status == RT_BACKOFF && now < m->next_start_boot)
		return;
	if (!gate_open) {
		snprintf(m->description, sizeof(m->description),
			 "waiting for modules with a lower startupOrder");
		return;
	}
	if (!m->image_digest[0] && dm->pull == PULL_ON_CREATE) {
		pull_start(d, m, dm);
		return;
	}
	instance_start(d, m, dm);
}

void reconcile(struct daemon *d)
{
	d->reconcile_due = false;
	if (!d->dep || d->stopping)
		return;
	int64_t now = boot_ms();
	for (size_t i = d->n_mods; i-- > 0;)
		if (d->mods[i]->stopping && now >= d->mods[i]->stop_deadline_boot)
			stop_force(d, d->mods[i]);
	for (size_t i = d->n_mods; i-- > 0;)
		if (!deployment_module(d->dep, d->mods[i]->name))
			module_drop(d, d->mods[i]);
	bool gate_open = true, group_ready = true;
	uint32_t group = d->dep->n_modules ? d->dep->modules[0].startup_order : 0;
	for (size_t i = 0; i < d->dep->n_modules; i++) {
		const struct deployment_module *dm = &d->dep->modules[i];
		if (dm->startup_order != group) {
			/* Each group waits until every earlier one has started. */
			gate_open = gate_open && group_ready;
			group_ready = true;
			group = dm->startup_order;
		}
		struct module_rt *m = module_find(d, dm->name);
		if (!m && !(m = module_new(d, dm->name))) {
			log_error("module %s: out of memory", dm->name);
			continue;
		}
		reconcile_module(d, dm, m, gate_open, now);
		if (dm->run && !m->started_here && m->status != RT_FAILED)
			group_ready = false;
	}
}

int64_t reconcile_next_deadline(struct daemon *d)
{
	int64_t next = INT64_MAX, boot = boot_ms(), wall = wall_ms();
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		if (m->status == RT_BACKOFF && !m->pull_pid && m->next_start_boot < next)
			next = m->next_start_boot;
		if (m->stopping && m->stop_deadline_boot < next)
			next = m->stop_deadline_boot;
		if (m->shim_pid && m->token_refresh_ms) {
			int64_t t =
			    boot + (m->token_refresh_ms > wall ? m->token_refresh_ms - wall : 0);
			if (t < next)
				next = t;
		}
	}
	return next;
}

int module_restart(struct daemon *d, const char *name, int reply_fd, struct berr *err)
{
	struct module_rt *m = module_find(d, name);
	const struct deployment_module *dm = desired(d, name);
	if (!m || !dm)
		return berr_set(err, 0, "module %s is not in the deployment", name);
	if (!dm->run)
		return berr_set(err, 0, "module %s has desired status stopped", name);
	if (m->shim_pid) {
		if (m->restart_reply_fd >= 0)
			return berr_set(err, 0, "module %s is restarting already", name);
		m->restart_requested = true;
		stop_begin(d, m, "restart requested");
		m->restart_reply_fd = reply_fd;
		return reply_fd >= 0 ? 1 : 0;
	}
	log_info("module %s: restart requested", name);
	m->restart_requested = true;
	m->restart_count = 0;
	m->done = false;
	m->status = RT_BACKOFF;
	m->next_start_boot = 0;
	save(d);
	d->reconcile_due = true;
	return 0;
}

void stop_all(struct daemon *d)
{
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i]->restart_reply_fd >= 0) {
			control_finish(d->mods[i]->restart_reply_fd, 500, "the daemon is stopping");
			d->mods[i]->restart_reply_fd = -1;
		}
	/* Reverse startup order: later groups depend on earlier ones. */
	size_t n = d->dep ? d->dep->n_modules : 0;
	for (size_t i = n; i-- > 0;) {
		struct module_rt *m = module_find(d, d->dep->modules[i].name);
		if (m && m->shim_pid) {
			log_info("module %s: stopping", m->name);
			instance_stop(d, m);
			m->status = RT_STOPPED;
			m->last_exit_ms = wall_ms();
			m->exited_boot = boot_ms();
		}
	}
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		if (m->shim_pid) {
			instance_stop(d, m);
			m->status = RT_STOPPED;
		}
		if (m->pull_pid > 0)
			kill(m->pull_pid, SIGTERM);
	}
	save(d);
}
