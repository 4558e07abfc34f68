/* Deployments from the cloud, as edgeAgent takes them (docs/CLOUD.md): with
 * "deployments": "cloud" the deployment is the desired properties of the
 * $edgeAgent and $edgeHub twins. The hub keeps those twins in step with IoT
 * Hub (hub/upstream_twin.c) and sends the daemon SIGUSR1 when they change;
 * the daemon then reads them over the hub's control socket, validates the
 * deployment whole and applies it as `berth deploy` would, or leaves the
 * running one and says why in lastDesiredStatus. The daemon reports its
 * modules as $edgeAgent's reported properties through the same socket; the
 * hub sends them up (merged while offline). The last applied deployment is
 * saved (record.c), so it stays in force offline and across reboots. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/version.h"
#include "hub/hub.h"

#define CLOUD_POLL_MS	  15000 /* the twins are read at least this often */
#define CLOUD_REPORT_MS	  1000	/* reported properties go at most this often */
#define CLOUD_CALL_MS	  3000
#define CLOUD_REPLY_MAX	  (4 * 1024 * 1024)
#define STATUS_OK	  200
#define STATUS_INVALID	  400
#define STATUS_OFFLINE	  406
#define STATUS_BAD_SCHEMA 412
#define STATUS_EMPTY	  417
#define STATUS_FAILED	  500

static int hub_call(struct daemon *d, const char *request, yajl_val *reply, struct berr *err)
{
	char ctl[4300];
	snprintf(ctl, sizeof(ctl), "%s/" HUB_CONTROL_SOCKET, d->run);
	cleanup_free char *text = NULL;
	if (hub_control_call(ctl, request, CLOUD_CALL_MS, &text, err) < 0)
		return -1;
	if (json_parse(text, strlen(text), CLOUD_REPLY_MAX, "the hub's answer", reply, err) < 0)
		return -1;
	yajl_val st = json_get(*reply, "status");
	if (!st || !YAJL_IS_INTEGER(st) || YAJL_GET_INTEGER(st) != 200) {
		const char *e = json_str(json_get(*reply, "error"));
		berr_set(err, 0, "the hub answered: %s", e ? e : "no status 200");
		yajl_tree_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

/* The twin of a system identity: its desired properties and their version,
 * when the hub has them from the cloud. 1: synced, 0: not yet, -1: err. */
static int read_twin(struct daemon *d, const char *module, yajl_val *reply, yajl_val *desired,
		     long long *version, struct berr *err)
{
	char req[128];
	snprintf(req, sizeof(req), "{\"op\":\"twin\",\"module\":\"%s\"}", module);
	if (hub_call(d, req, reply, err) < 0)
		return -1;
	if (!YAJL_IS_TRUE(json_get(*reply, "synced")))
		return 0;
	yajl_val twin = json_get(*reply, "twin");
	*desired = json_get(twin, "desired");
	yajl_val v = json_get(*desired, "$version");
	if (!*desired || !YAJL_IS_OBJECT(*desired) || !v || !YAJL_IS_INTEGER(v))
		return berr_set(err, 0, "twin of %s: no desired properties with a $version",
				module);
	*version = YAJL_GET_INTEGER(v);
	return 1;
}

/* The members of a twin section without IoT Hub's own ($metadata, $version). */
static void gen_section_values(yajl_gen g, yajl_val obj)
{
	yajl_gen_map_open(g);
	for (size_t i = 0; obj && YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++) {
		if (obj->u.object.keys[i][0] == '$')
			continue;
		json_gen_str(g, obj->u.object.keys[i]);
		json_gen_val(g, obj->u.object.values[i]);
	}
	yajl_gen_map_close(g);
}

static size_t member_count(yajl_val obj)
{
	size_t n = 0;
	for (size_t i = 0; obj && YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++)
		n += obj->u.object.keys[i][0] != '$';
	return n;
}

static void set_status(struct daemon *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_status(struct daemon *d, int code, const char *fmt, ...)
{
	struct cloud_state *c = &d->cloud;
	c->status_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->status_description, sizeof(c->status_description), fmt, ap);
	va_end(ap);
	c->report_due = true;
}

/* The deployment manifest the two twins make. */
static char *compose(yajl_val agent, yajl_val hub, size_t *len)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	const char *names[] = {"$edgeAgent", "$edgeHub"};
	yajl_val sections[] = {agent, hub};
	yajl_gen_map_open(g);
	json_gen_str(g, "modulesContent");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < 2; i++) {
		json_gen_str(g, names[i]);
		yajl_gen_map_open(g);
		json_gen_str(g, "properties.desired");
		gen_section_values(g, sections[i]);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char *text = json_gen_done(g, len);
	return text;
}

/* edgeAgent's rule: a schemaVersion of another major version is not ours. */
static bool schema_known(yajl_val desired)
{
	const char *v = json_str(json_get(desired, "schemaVersion"));
	return !v || !strncmp(v, "1.", 2) || !strcmp(v, "1");
}

static void apply(struct daemon *d, yajl_val agent, long long av, yajl_val hub, long long hv)
{
	struct cloud_state *c = &d->cloud;
	c->agent_version = av;
	c->hub_version = hv;
	c->report_due = true;
	if (member_count(agent) == 0) {
		set_status(d, STATUS_EMPTY,
			   "the deployment ($edgeAgent desired properties) is empty");
		log_warn("deployment from the cloud (version %lld): empty; the running one stays",
			 av);
		return;
	}
	if (!schema_known(agent) || !schema_known(hub)) {
		set_status(d, STATUS_BAD_SCHEMA, "schemaVersion %s is not supported (1.x is)",
			   json_str(json_get(schema_known(agent) ? hub : agent, "schemaVersion")));
		log_error("deployment from the cloud (version %lld): %s; the running one stays", av,
			  c->status_description);
		return;
	}
	size_t len = 0;
	cleanup_free char *text = compose(agent, hub, &len);
	if (!text) {
		set_status(d, STATUS_FAILED, "out of memory");
		return;
	}
	cleanup_free char *saved = NULL;
	size_t saved_len = 0;
	char file_hash[17];
	deployment_recorded(d, &saved, &saved_len, file_hash);
	if (d->dep && saved && saved_len == len && !memcmp(saved, text, len)) {
		set_status(d, STATUS_OK, "%s", "");
		return; /* what runs already */
	}
	char what[128];
	snprintf(what, sizeof(what), "deployment from the cloud (version %lld)", av);
	struct deployment_policy pol = {.allow_privileged = d->cfg->allow_privileged};
	struct deployment *check = NULL;
	struct berr err;
	if (deployment_parse(text, len, what, &pol, &check, &err) < 0) {
		set_status(d, STATUS_INVALID, "%s", err.msg);
		log_error("refused %s; the running deployment stays", err.msg);
		return;
	}
	deployment_free(check);
	if (deployment_apply(d, text, len, what, "cloud", NULL, &err) < 0) {
		set_status(d, STATUS_FAILED, "%s", err.msg);
		log_error("%s; the running deployment stays", err.msg);
		return;
	}
	set_status(d, STATUS_OK, "%s", "");
}

/* Reads the twins from the hub and applies a new deployment. */
static void fetch(struct daemon *d)
{
	struct cloud_state *c = &d->cloud;
	cleanup_yajl yajl_val ra = NULL, rh = NULL;
	yajl_val agent = NULL, hub = NULL;
	long long av = 0, hv = 0;
	struct berr err;
	int a = read_twin(d, "$edgeAgent", &ra, &agent, &av, &err);
	int h = a > 0 ? read_twin(d, "$edgeHub", &rh, &hub, &hv, &err) : 0;
	if (a < 0 || h < 0) {
		log_debug("deployment from the cloud: %s", err.msg);
		return;
	}
	if (a == 0 || h == 0) {
		/* Not read from the cloud yet (offline since the start). */
		if (d->dep && c->status_code != STATUS_OFFLINE && !c->agent_version)
			set_status(d, STATUS_OFFLINE,
				   "offline: the last applied deployment stays in force");
		return;
	}
	if (av == c->agent_version && hv == c->hub_version && c->status_code != STATUS_OFFLINE)
		return;
	log_info("deployment from the cloud: $edgeAgent version %lld, $edgeHub version %lld", av,
		 hv);
	apply(d, agent, av, hub, hv);
}

static void gen_time(yajl_gen g, const char *key, int64_t ms)
{
	char t[64];
	format_utc(ms, t, sizeof(t));
	if (t[0])
		json_gen_key_str(g, key, t);
}

static void gen_module(yajl_gen g, struct daemon *d, struct module_rt *m)
{
	const struct deployment_module *dm = deployment_module(d->dep, m->name);
	bool note = m->description[0] && (m->pull_pid || m->stopping || m->status != RT_RUNNING);
	json_gen_str(g, m->name);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "docker");
	json_gen_key_str(g, "status", dm->run ? "running" : "stopped");
	json_gen_key_str(g, "restartPolicy", restart_policy_name(dm->restart));
	if (dm->version)
		json_gen_key_str(g, "version", dm->version);
	json_gen_key_str(g, "runtimeStatus", runtime_status_name(m->status));
	json_gen_key_int(g, "exitCode", m->exit_code);
	json_gen_key_str(g, "statusDescription",
			 note ? m->description : runtime_status_name(m->status));
	gen_time(g, "lastStartTimeUtc", m->last_start_ms);
	gen_time(g, "lastExitTimeUtc", m->last_exit_ms);
	json_gen_key_int(g, "restartCount", m->restart_count);
	gen_time(g, "lastRestartTimeUtc", m->last_restart_ms);
	json_gen_str(g, "settings");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "image", dm->image);
	if (m->image_digest[0])
		json_gen_key_str(g, "imageHash", m->image_digest);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

/* The request handing a system identity's reported properties to the hub,
 * opened up to what edgeAgent and edgeHub both report: schemaVersion and
 * how the desired properties at `version` went. `how` is "reported" (the
 * whole section) or "patch". */
static yajl_gen report_begin(struct daemon *d, const char *module, const char *how,
			     long long version)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "op", "twin_report");
	json_gen_key_str(g, "module", module);
	json_gen_str(g, how);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "schemaVersion", "1.1");
	json_gen_key_int(g, "lastDesiredVersion", version);
	json_gen_str(g, "lastDesiredStatus");
	yajl_gen_map_open(g);
	json_gen_key_int(g, "code", d->cloud.status_code);
	json_gen_key_str(g, "description", d->cloud.status_description);
	yajl_gen_map_close(g);
	return g;
}

static char *report_finish(yajl_gen g)
{
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char *text = json_gen_done(g, NULL);
	return text;
}

/* A map of string members: key, value, ..., NULL. */
static void gen_strings(yajl_gen g, const char *name, ...)
{
	va_list ap;
	va_start(ap, name);
	json_gen_str(g, name);
	yajl_gen_map_open(g);
	for (const char *k; (k = va_arg(ap, const char *));)
		json_gen_key_str(g, k, va_arg(ap, const char *));
	yajl_gen_map_close(g);
	va_end(ap);
}

/* $edgeAgent's reported properties, as edgeAgent writes them. */
static char *agent_report(struct daemon *d)
{
	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	yajl_gen g = report_begin(d, "$edgeAgent", "reported", d->cloud.agent_version);
	if (!g)
		return NULL;
	gen_strings(g, "version", "version", berth_version, "build", "berth", "commit",
		    berth_revision, NULL);
	json_gen_str(g, "runtime");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "type", "docker");
	gen_strings(g, "platform", "os", "linux", "architecture", u.machine, "version", u.release,
		    NULL);
	yajl_gen_map_close(g);
	json_gen_str(g, "systemModules");
	yajl_gen_map_open(g);
	gen_strings(g, "edgeAgent", "runtimeStatus", "running", NULL);
	gen_strings(g, "edgeHub", "runtimeStatus", d->hub.pid > 0 ? "running" : "backoff", NULL);
	yajl_gen_map_close(g);
	json_gen_str(g, "modules");
	yajl_gen_map_open(g);
	for (size_t i = 0; d->dep && i < d->dep->n_modules; i++) {
		struct module_rt *m = module_find(d, d->dep->modules[i].name);
		if (m)
			gen_module(g, d, m);
	}
	yajl_gen_map_close(g);
	return report_finish(g);
}

/* $edgeHub's: how its desired properties (routes, store and forward) went. */
static char *hub_report(struct daemon *d)
{
	yajl_gen g = report_begin(d, "$edgeHub", "patch", d->cloud.hub_version);
	return g ? report_finish(g) : NULL;
}

/* Sends request unless it is what was sent last (*last keeps it). */
static void send_report(struct daemon *d, char **last, char *request)
{
	if (!request)
		return;
	if (*last && !strcmp(*last, request)) {
		free(request);
		return;
	}
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (hub_call(d, request, &reply, &err) < 0) {
		log_debug("reported properties: %s; trying again", err.msg);
		free(request);
		d->cloud.report_due = true;
		return;
	}
	free(*last);
	*last = request;
}

static void report(struct daemon *d)
{
	struct cloud_state *c = &d->cloud;
	c->report_due = false;
	c->next_report_boot = boot_ms() + CLOUD_REPORT_MS;
	if (!c->status_code)
		return; /* nothing to say before a deployment */
	send_report(d, &c->last_agent_report, agent_report(d));
	send_report(d, &c->last_hub_report, hub_report(d));
}

void cloud_tick(struct daemon *d)
{
	if (!d->cfg->deployments_cloud || d->hub.pid <= 0)
		return;
	struct cloud_state *c = &d->cloud;
	int64_t now = boot_ms();
	if (c->due || now >= c->next_fetch_boot) {
		c->due = false;
		c->next_fetch_boot = now + CLOUD_POLL_MS;
		fetch(d);
	}
	/* Module states change without telling anyone here: the report is
	 * made again each round and sent when it differs. */
	if (now >= c->next_report_boot)
		report(d);
}

int64_t cloud_next_deadline(struct daemon *d)
{
	struct cloud_state *c = &d->cloud;
	if (!d->cfg->deployments_cloud)
		return INT64_MAX;
	if (c->due)
		return 0;
	int64_t next = c->next_fetch_boot;
	if (c->report_due && c->next_report_boot < next)
		next = c->next_report_boot;
	return next;
}

void cloud_wake(struct daemon *d)
{
	d->cloud.due = true;
}

void cloud_free(struct daemon *d)
{
	free(d->cloud.last_agent_report);
	free(d->cloud.last_hub_report);
	d->cloud.last_agent_report = d->cloud.last_hub_report = NULL;
}

const char *cloud_refusal(struct daemon *d)
{
	if (!d->cfg->deployments_cloud)
		return NULL;
	return "this device takes its deployment from the cloud (the $edgeAgent twin in IoT Hub); "
	       "deploy there, or set \"deployments\": \"local\" in the daemon config";
}
