/* metrics_listen: the HTTP side (a fixed table of scrapes) and edgeAgent's
 * metrics, rendered from the daemon's module table, each module's cgroup
 * and the host. A scrape goes
 *   request read (conn.c, bounded) -> the daemon's part rendered -> the hub
 *   asked over its control socket, without waiting in the loop -> its text
 *   appended -> the answer sent -> every buffer freed. */
#include "agent/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/conn.h"
#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prom.h"
#include "common/sock.h"
#include "shim/shim.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

static void reply_error(int fd, int status, const char *error);

static struct conn slots[METRICS_CLIENTS_MAX];
static struct conn_table clients = {
    slots, METRICS_CLIENTS_MAX, TAG_MCLIENT, METRICS_REQUEST_MAX, METRICS_REQUEST_MS,
    431,   reply_error};

/* A scrape waiting for the hub's part. */
struct scrape {
	int fd;	    /* the scraper; -1: the slot is free */
	int hub_fd; /* the hub's control connection */
	bool head;
	struct strbuf body;
	size_t hub_from; /* where the hub's part starts in body */
	int64_t deadline_boot;
};
static struct scrape scrapes[METRICS_CLIENTS_MAX];

static void send_answer(int fd, int status, const char *type, const char *body, size_t len,
			bool head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, http_reason(status), type, len);
	if (send_bounded(fd, hdr, (size_t)n, 2000) == 0 && !head && len)
		send_bounded(fd, body, len, 2000);
}

static void reply_error(int fd, int status, const char *error)
{
	char body[300];
	int n = snprintf(body, sizeof(body), "%s\n", error);
	send_answer(fd, status, "text/plain; charset=utf-8", body, (size_t)n, false);
}

int metrics_listen(struct daemon *d, struct berr *err)
{
	conn_table_init(&clients);
	for (size_t i = 0; i < METRICS_CLIENTS_MAX; i++)
		scrapes[i].fd = scrapes[i].hub_fd = -1;
	char id[GENERATION_ID_LEN + 1];
	generation_id_new(id);
	snprintf(d->instance_number, sizeof(d->instance_number), "%.8s-%.4s-%.4s-%.4s-%.12s", id,
		 id + 8, id + 12, id + 16, id + 20);
	int fd = tcp_listen(d->cfg->metrics_listen, 16, SOCK_NONBLOCK, "metrics_listen", err);
	if (fd < 0)
		return -1;
	d->metrics_fd = fd;
	daemon_watch_fd(d, fd, TAG_METRICS);
	log_info("metrics on http://%s/metrics", d->cfg->metrics_listen);
	return 0;
}

void metrics_accept(struct daemon *d)
{
	for (;;) {
		int fd = accept4(d->metrics_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		if (!conn_add(d, &clients, fd)) {
			reply_error(fd, 503, "too many scrapes at once; try again");
			close(fd);
		}
	}
}

/* --- edgeAgent's metrics --- */

/* The labels every series has, after its own: iothub, edge_device,
 * instance_number. */
struct series {
	struct daemon *d;
	struct strbuf *out;
	struct prom_label l[6];
	size_t n;
};

static int emit(struct series *s, const char *name, double value)
{
	s->l[s->n] = (struct prom_label){"iothub", s->d->cfg->iothub_hostname, NULL};
	s->l[s->n + 1] = (struct prom_label){"edge_device", s->d->cfg->device_id, NULL};
	s->l[s->n + 2] = (struct prom_label){"instance_number", s->d->instance_number, NULL};
	return prom_series(s->out, name, s->l, s->n + 3, value);
}

static int emit1(struct daemon *d, struct strbuf *out, const char *name, const char *label,
		 const char *value, double v)
{
	struct series s = {.d = d, .out = out, .n = label ? 1 : 0};
	if (label)
		s.l[0] = (struct prom_label){label, value, NULL};
	return emit(&s, name, v);
}

/* What each module's series reads; every line one metric. */
struct module_view {
	struct daemon *d;
	struct module_rt *m;
	const struct deployment_module *dm;
	struct instance_usage use; /* -1s when it has no cgroup */
	struct instance_state st;  /* health; HEALTH_NONE when not running */
	int64_t now;
};

static double running_ms(const struct module_view *v)
{
	bool running = v->m->status == RT_RUNNING && v->m->shim_pid;
	return (double)v->m->ran_ms + (running ? (double)(v->now - v->m->started_boot) : 0);
}

static double expected_ms(const struct module_view *v)
{
	return v->m->desired_since_boot ? (double)(v->now - v->m->desired_since_boot) : 0;
}

/* name, type, help, value (of `v`; NAN to leave the module out), and
 * whether module_version is a label (edgeAgent's start and stop counts). */
#define MODULE_METRICS(X)                                                                          \
	X("edgeAgent_total_time_running_correctly_seconds", "gauge",                               \
	  "The amount of time the module was specified in the deployment and was in the running "  \
	  "state",                                                                                 \
	  running_ms(v) / 1000, false)                                                             \
	X("edgeAgent_total_time_expected_running_seconds", "gauge",                                \
	  "The amount of time the module was specified in the deployment", expected_ms(v) / 1000,  \
	  false)                                                                                   \
	X("edgeAgent_module_start_total", "counter",                                               \
	  "Number of times edgeAgent asked docker to start the module", (double)v->m->starts,      \
	  true)                                                                                    \
	X("edgeAgent_module_stop_total", "counter",                                                \
	  "Number of times edgeAgent asked docker to stop the module", (double)v->m->stops, true)  \
	X("edgeAgent_used_memory_bytes", "gauge", "Amount of RAM used by all processes",           \
	  v->use.memory_bytes < 0 ? NAN : (double)v->use.memory_bytes, false)                      \
	X("edgeAgent_created_pids_total", "gauge",                                                 \
	  "The number of processes or threads the container has created",                          \
	  v->use.pids < 0 ? NAN : (double)v->use.pids, false)                                      \
	X("berth_module_cpu_seconds_total", "counter",                                             \
	  "CPU time the module's processes used since its instance started, from its cgroup",      \
	  v->use.cpu_ns < 0 ? NAN : (double)v->use.cpu_ns / 1e9, false)                            \
	X("berth_module_restarts", "gauge",                                                        \
	  "The module's restartCount as edgeAgent reports it (back to 0 after 10 minutes up)",     \
	  (double)v->m->restart_count, false)                                                      \
	X("berth_module_running", "gauge", "1 while the module's instance runs",                   \
	  (double)(v->m->status == RT_RUNNING && v->m->shim_pid), false)                           \
	X("berth_module_healthy", "gauge",                                                         \
	  "1 healthy, 0 unhealthy, -1 starting, by the module's health check",                     \
	  v->st.health == HEALTH_HEALTHY     ? 1                                                   \
	  : v->st.health == HEALTH_UNHEALTHY ? 0                                                   \
	  : v->st.health == HEALTH_STARTING  ? -1                                                  \
					     : NAN,                                                 \
	  false)

#define MODULE_ROW(name, type, help, expr, version) {name, type, help, version},

static const struct {
	const char *name, *type, *help;
	bool version;
} module_metrics[] = {MODULE_METRICS(MODULE_ROW)};

static double module_value(size_t which, const struct module_view *v)
{
	size_t i = 0;
#define MODULE_CASE(name, type, help, expr, version)                                               \
	if (which == i++)                                                                          \
		return (expr);
	MODULE_METRICS(MODULE_CASE)
#undef MODULE_CASE
	return NAN;
}

static int render_modules(struct daemon *d, struct strbuf *out, int64_t now)
{
	/* Static: about 1 KiB a module, too much for the stack of a small
	 * device, and the daemon renders one scrape at a time. */
	static struct module_view views[DEPLOYMENT_MAX_MODULES * 2];
	size_t n = 0;
	for (size_t i = 0; i < d->n_mods && n < ARRAY_SIZE(views); i++) {
		struct module_view *v = &views[n++];
		memset(v, 0, sizeof(*v));
		v->d = d;
		v->m = d->mods[i];
		v->dm = module_desired(d, v->m->name);
		v->now = now;
		v->use = (struct instance_usage){-1, -1, -1};
		v->st.health = HEALTH_NONE;
		struct berr e;
		if (v->m->shim_pid) {
			if (shim_instance_usage(v->m->name, &v->use, &e) < 0)
				v->use = (struct instance_usage){-1, -1, -1};
			if (shim_state_read(d->root, v->m->name, &v->st, &e) < 0)
				v->st.health = HEALTH_NONE;
		}
	}
	for (size_t k = 0; k < ARRAY_SIZE(module_metrics); k++) {
		if (prom_head(out, module_metrics[k].name, module_metrics[k].type,
			      module_metrics[k].help) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			double value = module_value(k, &views[i]);
			if (value != value) /* NAN: not for this module */
				continue;
			struct series s = {
			    .d = d, .out = out, .n = module_metrics[k].version ? 2 : 1};
			s.l[0] = (struct prom_label){"module_name", views[i].m->name, NULL};
			const char *ver =
			    views[i].dm && views[i].dm->version ? views[i].dm->version : "";
			s.l[1] = (struct prom_label){"module_version", ver, NULL};
			if (emit(&s, module_metrics[k].name, value) < 0)
				return -1;
		}
	}
	return 0;
}

/* The host and the daemon. */
static int render_host(struct daemon *d, struct strbuf *out, int64_t now)
{
	struct utsname u;
	struct sysinfo si;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	if (sysinfo(&si) < 0)
		memset(&si, 0, sizeof(si));
	char info[512];
	snprintf(info, sizeof(info),
		 "{\"OperatingSystemType\":\"linux\",\"Architecture\":\"%s\",\"Version\":\"%s\","
		 "\"KernelVersion\":\"%s\",\"NumCpus\":%ld}",
		 u.machine, BERTH_VERSION, u.release, sysconf(_SC_NPROCESSORS_ONLN));
	struct series meta = {.d = d, .out = out, .n = 3};
	meta.l[0] = (struct prom_label){"edge_agent_version", BERTH_VERSION, NULL};
	meta.l[1] = (struct prom_label){"experimental_features", "{}", NULL};
	meta.l[2] = (struct prom_label){"host_information", info, NULL};
	if (prom_head(out, "edgeAgent_metadata", "gauge",
		      "General metadata about the device. The value is always 0, information is "
		      "encoded in the tags") < 0 ||
	    emit(&meta, "edgeAgent_metadata", 0) < 0)
		return -1;
	double mem_unit = si.mem_unit ? si.mem_unit : 1;
	const struct {
		const char *name, *help;
		double value;
	} host[] = {
	    {"edgeAgent_host_uptime_seconds", "How long the host has been on", (double)now / 1000},
	    {"edgeAgent_iotedged_uptime_seconds", "How long iotedged has been running",
	     (double)(now - d->started_boot) / 1000},
	};
	for (size_t i = 0; i < ARRAY_SIZE(host); i++)
		if (prom_head(out, host[i].name, "gauge", host[i].help) < 0 ||
		    emit1(d, out, host[i].name, NULL, NULL, host[i].value) < 0)
			return -1;
	if (prom_head(out, "edgeAgent_total_memory_bytes", "gauge", "RAM available") < 0 ||
	    emit1(d, out, "edgeAgent_total_memory_bytes", "module_name", "host",
		  (double)si.totalram * mem_unit) < 0)
		return -1;
	/* The state directory and the message store: where a device fills up. */
	const char *dirs[] = {d->root, d->cfg->hub_store};
	const char *kinds[] = {"state", "store"};
	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass ? "edgeAgent_total_disk_space_bytes"
					: "edgeAgent_available_disk_space_bytes";
		if (prom_head(out, name, "gauge",
			      pass ? "Size of the disk" : "Amount of space left on the disk") < 0)
			return -1;
		for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
			struct statvfs sv;
			if (!dirs[i] || statvfs(dirs[i], &sv) < 0)
				continue;
			double v = pass ? (double)sv.f_blocks * sv.f_frsize
					: (double)sv.f_bavail * sv.f_frsize;
			struct series s = {.d = d, .out = out, .n = 3};
			s.l[0] = (struct prom_label){"disk_name", dirs[i], NULL};
			s.l[1] = (struct prom_label){"disk_filesystem", "", NULL};
			s.l[2] = (struct prom_label){"disk_filetype", kinds[i], NULL};
			if (emit(&s, name, v) < 0)
				return -1;
		}
	}
	return 0;
}

/* --- a scrape --- */

static struct scrape *scrape_of(int fd, bool hub)
{
	for (size_t i = 0; i < METRICS_CLIENTS_MAX; i++)
		if (scrapes[i].fd >= 0 && (hub ? scrapes[i].hub_fd : scrapes[i].fd) == fd)
			return &scrapes[i];
	return NULL;
}

static void scrape_end(struct daemon *d, struct scrape *s, bool hub_ok)
{
	if (s->hub_fd >= 0) {
		daemon_unwatch_fd(d, s->hub_fd);
		close(s->hub_fd);
		s->hub_fd = -1;
	}
	/* A hub that answered with an error or not at all: its part goes. */
	if (!hub_ok && s->body.len > s->hub_from) {
		s->body.len = s->hub_from;
		s->body.buf[s->body.len] = '\0';
	}
	int rc = prom_head(&s->body, "berth_hub_up", "gauge",
			   "1 when the hub answered this scrape with its metrics");
	if (rc == 0)
		rc = emit1(d, &s->body, "berth_hub_up", NULL, NULL, hub_ok ? 1 : 0);
	if (rc < 0)
		reply_error(s->fd, 500, "metrics: out of memory or over 8 MiB");
	else
		send_answer(s->fd, 200, PROM_CONTENT_TYPE, s->body.buf, s->body.len, s->head);
	close(s->fd);
	s->fd = -1;
	strbuf_release(&s->body);
}

/* Asks the hub for its part on a non-blocking connection the loop
 * watches: -1 when the hub cannot be reached now. */
static int ask_hub(struct daemon *d)
{
	if (!d->cfg->hub_enabled || d->hub.pid <= 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" HUB_CONTROL_SOCKET, d->run) >=
	    (int)sizeof(sa.sun_path))
		return -1;
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	static const char req[] = "{\"op\":\"metrics\"}\n";
	/* A local stream socket takes a connection and a short request at once. */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
		return -1;
	return take_fd(&fd);
}

static void scrape_begin(struct daemon *d, int fd, bool head)
{
	struct scrape *s = NULL;
	for (size_t i = 0; i < METRICS_CLIENTS_MAX && !s; i++)
		if (scrapes[i].fd < 0)
			s = &scrapes[i];
	if (!s) {
		reply_error(fd, 503, "too many scrapes at once; try again");
		close(fd);
		return;
	}
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->hub_fd = -1;
	s->head = head;
	s->body = (struct strbuf)STRBUF_INIT;
	s->body.max = METRICS_RESPONSE_MAX;
	int64_t now = boot_ms();
	if (render_host(d, &s->body, now) < 0 || render_modules(d, &s->body, now) < 0) {
		reply_error(fd, 500, "metrics: out of memory or over 8 MiB");
		close(fd);
		s->fd = -1;
		strbuf_release(&s->body);
		return;
	}
	s->hub_from = s->body.len;
	s->hub_fd = ask_hub(d);
	if (s->hub_fd < 0) {
		scrape_end(d, s, false);
		return;
	}
	s->deadline_boot = now + METRICS_HUB_MS;
	daemon_watch_fd(d, s->hub_fd, TAG_MHUB);
}

void metrics_client_ready(struct daemon *d, int fd)
{
	static const struct http_limits limits = {METRICS_REQUEST_MAX, 0};
	static const char *const path[] = {"metrics"};
	struct conn *c = conn_find(&clients, fd);
	while (c && conn_read(d, &clients, c) > 0) {
		struct http_request req;
		int status;
		struct berr err;
		int rc =
		    http_request_parse(c->in.buf, c->in.len, &limits, &req, NULL, 0, &status, &err);
		if (rc == 0)
			continue;
		bool head = rc > 0 && !strcmp(req.method, "HEAD");
		if (rc > 0 && !http_path_is(&req, path, 1)) {
			rc = -1;
			status = 404;
			berr_set(&err, 0, "not found: berth serves /metrics");
		} else if (rc > 0 && !head && strcmp(req.method, "GET")) {
			rc = -1;
			status = 405;
			berr_set(&err, 0, "method not allowed: use GET");
		}
		if (rc < 0) {
			reply_error(fd, status, err.msg);
			conn_close(d, c);
			return;
		}
		/* The request is all a scraper sends: its connection now waits
		 * for the answer only. */
		conn_release(d, c);
		scrape_begin(d, fd, head);
		return;
	}
}

void metrics_hub_ready(struct daemon *d, int fd)
{
	struct scrape *s = scrape_of(fd, true);
	if (!s)
		return;
	char buf[16384];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* The end of the answer; JSON there is an error. */
			bool ok =
			    n == 0 && s->body.len > s->hub_from && s->body.buf[s->hub_from] == '#';
			scrape_end(d, s, ok);
			return;
		}
		if (strbuf_append(&s->body, buf, (size_t)n) < 0) {
			scrape_end(d, s, false);
			return;
		}
	}
}

int64_t metrics_sweep(struct daemon *d, int64_t now)
{
	if (d->metrics_fd < 0)
		return INT64_MAX;
	int64_t next = conn_sweep(d, &clients, now);
	for (size_t i = 0; i < METRICS_CLIENTS_MAX; i++) {
		struct scrape *s = &scrapes[i];
		if (s->fd < 0)
			continue;
		if (now >= s->deadline_boot) {
			log_warn("metrics: the hub did not answer within %d ms", METRICS_HUB_MS);
			scrape_end(d, s, false);
		} else if (s->deadline_boot < next) {
			next = s->deadline_boot;
		}
	}
	return next;
}
