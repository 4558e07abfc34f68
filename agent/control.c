/* The CLI socket <run>/berthd.sock: root only (SO_PEERCRED), one JSON
 * request per line, one JSON reply line, then the connection closes.
 *   {"op":"info"}                         -> version, root, run, device_id, upstream
 *   {"op":"list"}                         -> modules with edgeAgent's reported fields,
 *                                            and the upstream's identities
 *   {"op":"restart","module":"m"}
 *   {"op":"deploy","manifest":"<text>"}   -> warnings, or the validation error
 *   {"op":"token","module":"m","ttl":3600}
 * Replies carry "status" (200, 400, 403, 404, 500) and "error" when not 200. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/conn.h"
#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sas.h"
#include "common/sock.h"
#include "common/strbuf.h"
#include "shim/shim.h"

#define CONTROL_REQUEST_MAX (3 * 1024 * 1024) /* a 1 MiB manifest, escaped */
#define CONTROL_CLIENTS_MAX 16
/* A client gets this long to send its request line (the CLI sends it as soon
 * as it is connected), and this long to take the answer. */
#define CONTROL_REQUEST_MS 5000
#define CONTROL_SEND_MS	   2000

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

static void control_finish(int fd, int status, const char *error);
static void reply_error(int fd, int status, const char *msg);

static struct conn slots[CONTROL_CLIENTS_MAX];
static struct conn_table clients = {
    slots, CONTROL_CLIENTS_MAX, TAG_CLIENT, CONTROL_REQUEST_MAX, CONTROL_REQUEST_MS,
    400,   reply_error};

int control_listen(struct daemon *d, struct berr *err)
{
	conn_table_init(&clients);
	char path[4300];
	snprintf(path, sizeof(path), "%s/" CONTROL_SOCKET, d->run);
	/* Root's alone from the start. */
	int fd = unix_listen(path, 0600, 16, SOCK_NONBLOCK, "control socket", err);
	if (fd < 0)
		return -1;
	d->control_fd = fd;
	d->restart_done = control_finish;
	daemon_watch_fd(d, fd, TAG_CONTROL);
	return 0;
}

static void reply_send(int fd, yajl_gen g)
{
	size_t len = 0;
	char *text = json_gen_done(g, &len);
	if (!text)
		return;
	text[len] = '\n'; /* json_gen_finish() leaves room for its NUL */
	send_bounded(fd, text, len + 1, CONTROL_SEND_MS);
	free(text);
}

static yajl_gen reply_begin(int status)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_int(g, "status", status);
	return g;
}

static void reply_error(int fd, int status, const char *msg)
{
	yajl_gen g = reply_begin(status);
	if (!g)
		return;
	json_gen_key_str(g, "error", msg);
	yajl_gen_map_close(g);
	reply_send(fd, g);
}

static void gen_time(yajl_gen g, const char *key, int64_t ms)
{
	char t[64];
	format_utc(ms, t, sizeof(t));
	if (t[0])
		json_gen_key_str(g, key, t);
	else
		json_gen_key_str(g, key, NULL);
}

/* A running module's health, as its shim last recorded it. */
static void gen_health(yajl_gen g, const struct instance_state *st)
{
	json_gen_str(g, "health");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "status", health_status_name(st->health));
	json_gen_key_int(g, "failingStreak", st->health_failing_streak);
	if (st->health_checked_at) {
		json_gen_key_int(g, "lastExitCode", st->health_exit_code);
		gen_time(g, "lastCheckUtc", st->health_checked_at);
		json_gen_key_str(g, "lastOutput", st->health_output);
	}
	yajl_gen_map_close(g);
}

static void gen_module(yajl_gen g, struct daemon *d, struct module_rt *m, int64_t now)
{
	const struct deployment_module *dm = d->dep ? deployment_module(d->dep, m->name) : NULL;
	char shown[300];
	/* Ages ("Up 3 minutes") on the boot clock: setting the system time does
	 * not change how long a module has run. */
	status_description(m->status, m->exit_code, m->started_boot, m->exited_boot, now, shown,
			   sizeof(shown));
	struct instance_state st = {.health = HEALTH_NONE};
	struct berr ignored;
	if (m->status != RT_RUNNING || !m->shim_pid ||
	    shim_state_read(d->root, m->name, &st, &ignored) < 0)
		st.health = HEALTH_NONE;
	status_add_health(shown, sizeof(shown), health_status_name(st.health));
	enum runtime_status shown_status =
	    st.health == HEALTH_UNHEALTHY && !m->stopping ? RT_UNHEALTHY : m->status;
	/* The daemon's own note (pulling, waiting, why a start failed) says
	 * more than the status alone when the module is not running. */
	bool note = m->description[0] && (m->pull_pid || m->stopping || m->status != RT_RUNNING);
	const char *desc = note ? m->description : shown;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "name", m->name);
	json_gen_key_str(g, "runtimeStatus", runtime_status_name(shown_status));
	json_gen_key_str(g, "description",
			 m->status == RT_UNKNOWN || m->pull_pid || m->stopping ? desc : shown);
	json_gen_key_str(g, "statusDescription", desc);
	json_gen_key_int(g, "exitCode", m->exit_code);
	gen_time(g, "lastStartTimeUtc", m->last_start_ms);
	gen_time(g, "lastExitTimeUtc", m->last_exit_ms);
	json_gen_key_int(g, "restartCount", m->restart_count);
	gen_time(g, "lastRestartTimeUtc", m->last_restart_ms);
	json_gen_key_str(g, "image", dm ? dm->image : m->image);
	json_gen_key_str(g, "imageDigest", m->image_digest[0] ? m->image_digest : NULL);
	json_gen_key_str(g, "generationId", m->generation_id);
	json_gen_key_str(g, "desiredStatus", dm ? (dm->run ? "running" : "stopped") : "removed");
	json_gen_key_str(g, "restartPolicy", dm ? restart_policy_name(dm->restart) : NULL);
	if (m->shim_pid)
		json_gen_key_int(g, "shimPid", m->shim_pid);
	if (st.health != HEALTH_NONE)
		gen_health(g, &st);
	/* createOptions Labels: metadata for whoever manages the device. */
	json_gen_str(g, "labels");
	yajl_gen_map_open(g);
	for (char **l = dm ? dm->create.labels : NULL; l && *l; l++) {
		const char *eq = strchr(*l, '=');
		char key[256];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *l), *l);
		json_gen_key_str(g, key, eq + 1);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void gen_upstream(yajl_gen g, struct daemon *d)
{
	if (!d->cfg->upstream_url)
		return;
	json_gen_str(g, "upstream");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "url", d->cfg->upstream_url);
	identities_gen_status(d, g);
	json_gen_key_str(g, "deployments", d->cfg->deployments_cloud ? "cloud" : "local");
	if (d->cfg->deployments_cloud && d->cloud.status_code) {
		json_gen_key_int(g, "desired_version", d->cloud.agent_version);
		json_gen_key_int(g, "desired_status", d->cloud.status_code);
		json_gen_key_str(g, "desired_description", d->cloud.status_description);
	}
	yajl_gen_map_close(g);
}

static void op_list(struct daemon *d, int fd)
{
	yajl_gen g = reply_begin(200);
	if (!g)
		return;
	int64_t now = boot_ms();
	json_gen_str(g, "modules");
	yajl_gen_array_open(g);
	for (size_t i = 0; d->dep && i < d->dep->n_modules; i++) {
		struct module_rt *m = module_find(d, d->dep->modules[i].name);
		if (m)
			gen_module(g, d, m, now);
	}
	for (size_t i = 0; i < d->n_mods; i++)
		if (!d->dep || !deployment_module(d->dep, d->mods[i]->name))
			gen_module(g, d, d->mods[i], now);
	yajl_gen_array_close(g);
	gen_upstream(g, d);
	yajl_gen_map_close(g);
	reply_send(fd, g);
}

static void op_info(struct daemon *d, int fd)
{
	yajl_gen g = reply_begin(200);
	if (!g)
		return;
	json_gen_key_str(g, "version", BERTH_VERSION);
	json_gen_key_str(g, "root", d->root);
	json_gen_key_str(g, "run", d->run);
	json_gen_key_str(g, "device_id", d->cfg->device_id);
	json_gen_key_str(g, "iothub_hostname", d->cfg->iothub_hostname);
	json_gen_key_int(g, "pid", getpid());
	json_gen_key_int(g, "hub_pid", d->hub.pid);
	gen_upstream(g, d);
	yajl_gen_map_close(g);
	reply_send(fd, g);
}

static void op_deploy(struct daemon *d, int fd, yajl_val req)
{
	const char *text = json_str(json_get(req, "manifest"));
	if (!text) {
		reply_error(fd, 400, "deploy: \"manifest\" is missing");
		return;
	}
	const char *refusal = cloud_refusal(d);
	if (refusal) {
		log_warn("refused a deployment from berth deploy: %s", refusal);
		reply_error(fd, 409, refusal);
		return;
	}
	const char *what = json_str(json_get(req, "name"));
	char label[300];
	snprintf(label, sizeof(label), "deployment %.200s", what ? what : "from berth deploy");
	struct berr err;
	struct deployment *dep = NULL;
	if (deployment_apply(d, text, strlen(text), label, "cli", &dep, &err) < 0) {
		log_error("refused %s", err.msg);
		reply_error(fd, 400, err.msg);
		return;
	}
	yajl_gen g = reply_begin(200);
	if (!g)
		return;
	json_gen_key_int(g, "modules", (long long)dep->n_modules);
	json_gen_str(g, "warnings");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < dep->n_modules; i++)
		for (size_t w = 0; w < dep->modules[i].create.n_warnings; w++) {
			char line[400];
			snprintf(line, sizeof(line), "module %s: %s", dep->modules[i].name,
				 dep->modules[i].create.warnings[w]);
			json_gen_str(g, line);
		}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	reply_send(fd, g);
}

/* Answers a request whose answer was deferred (d->restart_done), and closes
 * its connection: 200 when error is NULL. */
static void control_finish(int fd, int status, const char *error)
{
	if (error)
		reply_error(fd, status, error);
	else {
		yajl_gen g = reply_begin(status);
		if (g) {
			yajl_gen_map_close(g);
			reply_send(fd, g);
		}
	}
	close(fd);
}

/* The answer waits until the module has stopped (its grace period), without
 * holding up the daemon: true when the connection was handed on. */
static bool op_restart(struct daemon *d, int fd, yajl_val req)
{
	const char *name = json_str(json_get(req, "module"));
	struct berr err;
	if (!name) {
		reply_error(fd, 400, "restart: \"module\" is missing");
		return false;
	}
	int rc = module_restart(d, name, fd, &err);
	if (rc < 0) {
		reply_error(fd, 404, err.msg);
		return false;
	}
	if (rc > 0)
		return true;
	yajl_gen g = reply_begin(200);
	if (g) {
		yajl_gen_map_close(g);
		reply_send(fd, g);
	}
	return false;
}

static void op_token(struct daemon *d, int fd, yajl_val req)
{
	const char *name = json_str(json_get(req, "module"));
	yajl_val ttlv = json_get(req, "ttl");
	int64_t ttl = ttlv && YAJL_IS_INTEGER(ttlv) ? YAJL_GET_INTEGER(ttlv) : 3600;
	if (!name) {
		reply_error(fd, 400, "token: \"module\" is missing");
		return;
	}
	if (ttl < 1 || ttl > 365LL * 24 * 3600) {
		reply_error(fd, 400, "token: ttl must be 1 to 31536000 seconds");
		return;
	}
	struct module_rt *m = module_find(d, name);
	if (!m || !d->dep || !deployment_module(d->dep, name)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "module %s is not in the deployment", name);
		reply_error(fd, 404, msg);
		return;
	}
	char token[SAS_TOKEN_MAX];
	struct berr err;
	if (module_token(d, m, ttl, token, sizeof(token), &err) < 0) {
		reply_error(fd, 500, err.msg);
		return;
	}
	yajl_gen g = reply_begin(200);
	if (!g)
		return;
	json_gen_key_str(g, "token", token);
	json_gen_key_str(g, "generation_id", m->generation_id);
	yajl_gen_map_close(g);
	explicit_bzero(token, sizeof(token));
	reply_send(fd, g);
}

/* True when the connection was handed on to answer later. */
static bool handle_request(struct daemon *d, int fd, const char *line, size_t len)
{
	cleanup_yajl yajl_val req = NULL;
	struct berr err;
	bool kept = false;
	if (json_parse(line, len, CONTROL_REQUEST_MAX, "request", &req, &err) < 0) {
		reply_error(fd, 400, err.msg);
		return false;
	}
	const char *op = json_str(json_get(req, "op"));
	if (!op)
		reply_error(fd, 400, "request: \"op\" is missing");
	else if (!strcmp(op, "list"))
		op_list(d, fd);
	else if (!strcmp(op, "info"))
		op_info(d, fd);
	else if (!strcmp(op, "deploy"))
		op_deploy(d, fd, req);
	else if (!strcmp(op, "restart"))
		kept = op_restart(d, fd, req);
	else if (!strcmp(op, "token"))
		op_token(d, fd, req);
	else {
		char msg[128];
		snprintf(msg, sizeof(msg), "unknown op \"%.32s\"", op);
		reply_error(fd, 400, msg);
	}
	return kept;
}

void control_accept(struct daemon *d)
{
	for (;;) {
		int fd = accept4(d->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (!sock_peer_is_root(fd)) {
			reply_error(fd, 403,
				    "permission denied: the berth daemon answers root only");
			close(fd);
			continue;
		}
		if (!conn_add(d, &clients, fd)) {
			reply_error(fd, 500, "too many clients; try again");
			close(fd);
		}
	}
}

void control_client_ready(struct daemon *d, int fd)
{
	struct conn *c = conn_find(&clients, fd);
	while (c && conn_read(d, &clients, c) > 0) {
		char *nl = memchr(c->in.buf, '\n', c->in.len);
		if (nl) {
			if (handle_request(d, fd, c->in.buf, (size_t)(nl - c->in.buf)))
				conn_release(d, c);
			else
				conn_close(d, c);
			return;
		}
	}
}

/* Connections that did not send their request in time are closed, so idle
 * clients cannot use up the slots. */
int64_t control_sweep(struct daemon *d, int64_t now)
{
	return d->control_fd >= 0 ? conn_sweep(d, &clients, now) : INT64_MAX;
}
