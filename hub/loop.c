/* The event loop: epoll over the listeners, clients, control connections,
 * signals and the store's completions, plus a timer pass for keepalive,
 * CONNECT and method-call deadlines and message expiry. */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "hub/broker.h"
#include "hub/control.h"
#include "hub/upstream.h"

#define TICK_MS	      500
#define TRIM_EVERY_MS 5000

void broker_clock(struct broker *b)
{
	b->now_ms = wall_ms();
	b->mono_ms = mono_ms();
}

int broker_watch(struct broker *b, struct hub_io *io, uint32_t events, struct berr *err)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
		return berr_set(err, errno, "epoll_ctl");
	return 0;
}

void broker_unwatch(struct broker *b, struct hub_io *io)
{
	if (io->fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

static void on_signal(struct hub_io *io, uint32_t events)
{
	struct broker *b = (struct broker *)((char *)io - offsetof(struct broker, signals));
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct berr err;
			if (broker_reload(b, &err) < 0)
				log_error("reload refused, keeping the running config: %s",
					  err.msg);
		} else {
			log_info("signal %u: stopping", si.ssi_signo);
			b->stop = true;
		}
	}
}

static void on_store_event(struct hub_io *io, uint32_t events)
{
	struct broker *b = (struct broker *)((char *)io - offsetof(struct broker, store_events));
	store_dispatch(b->store);
	struct berr err;
	if (store_error(b->store, &err) < 0) {
		/* Never a quiet switch to memory: the daemon restarts the hub,
		 * which opens the store again or says why it cannot. */
		log_error("stopping: the message store cannot go on: %s", err.msg);
		b->stop = true;
		b->exit_code = 1;
	}
}

/* Messages for a module's input were written: its session may lease them
 * before they are synced (only the sender's PUBACK waits for that). */
static void on_store_ready(void *arg, const char *endpoint)
{
	struct broker *b = arg;
	const char *prefix = "/modules/";
	size_t up = strlen(UPSTREAM_ENDPOINT_PREFIX);
	if (!strncmp(endpoint, UPSTREAM_ENDPOINT_PREFIX, up)) {
		upstream_notify(b, endpoint + up);
		return;
	}
	if (strncmp(endpoint, prefix, strlen(prefix)))
		return;
	const char *mod = endpoint + strlen(prefix);
	size_t len = strcspn(mod, "/");
	char module[HUB_NAME_MAX + 1];
	if (len == 0 || len > HUB_NAME_MAX)
		return;
	memcpy(module, mod, len);
	module[len] = '\0';
	session_pump_module(b, module);
}

/* Identities that are gone or changed lose their connections and sessions:
 * their tokens are no longer valid. */
static void drop_revoked(struct broker *b, const struct hub_config *old)
{
	bool persistent = false;
	bool device_changed = strcmp(old->device_id, b->cfg->device_id) ||
			      strcmp(old->device_key, b->cfg->device_key) ||
			      strcasecmp(old->hostname, b->cfg->hostname);
	for (;;) {
		struct session *s = b->sessions;
		for (; s; s = s->next) {
			const struct hub_module *was = hub_config_module(old, s->module);
			const struct hub_module *now = hub_config_module(b->cfg, s->module);
			if (device_changed || !now ||
			    (was && strcmp(was->generation_id, now->generation_id)))
				break;
		}
		if (!s) {
			if (persistent)
				sessions_save(b);
			return;
		}
		if (s->client)
			client_close(s->client, LOG_LVL_INFO, false,
				     "identity removed or changed by the new config");
		persistent |= s->persistent;
		session_discard(s);
	}
}

int broker_reload(struct broker *b, struct berr *err)
{
	struct hub_config *cfg;
	if (hub_config_load(b->config_path, &cfg, err) < 0)
		return -1;
	struct route_table *routes;
	if (route_table_build(cfg->routes, cfg->n_routes, &routes, err) < 0) {
		hub_config_free(cfg);
		return berr_wrap(err, "%s: routes", b->config_path);
	}
	route_table_set_default_ttl(routes, cfg->default_ttl_secs);
	const struct hub_config *old = b->cfg;
	if ((cfg->socket_path && old->socket_path && strcmp(cfg->socket_path, old->socket_path)) ||
	    (cfg->listen_tcp != old->listen_tcp &&
	     (!cfg->listen_tcp || !old->listen_tcp || strcmp(cfg->listen_tcp, old->listen_tcp))))
		log_warn("reload: listening addresses change only when the hub restarts");
	route_table_free(b->routes);
	b->routes = routes;
	b->cfg = cfg;
	if (strcmp(cfg->state_dir, old->state_dir))
		log_warn("reload: the store's directory changes only when the hub restarts");
	store_set_limits(b->store, hub_config_store_bound(cfg), cfg->min_free_percent,
			 (enum store_full_policy)cfg->store_full, cfg->default_ttl_secs);
	drop_revoked(b, old);
	upstream_reload(b, old);
	gateway_listen_sync(b);
	hub_config_free((struct hub_config *)old);
	if (twins_sync(b, true, err) < 0)
		log_error("reload: twins: %s", err->msg);
	log_info("config reloaded: %zu module(s), %zu route(s)", cfg->n_modules, cfg->n_routes);
	return 0;
}

static int open_signals(struct broker *b, struct berr *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return berr_set(err, errno, "sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	b->signals.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (b->signals.fd < 0)
		return berr_set(err, errno, "signalfd");
	b->signals.on_event = on_signal;
	return broker_watch(b, &b->signals, EPOLLIN, err);
}

int broker_init(struct broker *b, const char *config_path, int listen_fd, struct berr *err)
{
	memset(b, 0, sizeof(*b));
	b->config_path = config_path;
	b->unix_listener.fd = b->tcp_listener.fd = b->control_listener.fd = -1;
	b->signals.fd = b->store_events.fd = -1;
	b->next_client_id = 1;
	b->next_rid = 1;
	broker_clock(b);
	if (hub_metrics_init(&b->metrics) < 0)
		return berr_set(err, ENOMEM, "metrics");
	listener_raise_fd_limit();
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0)
		return berr_set(err, errno, "epoll_create1");
	if (hub_config_load(config_path, &b->cfg, err) < 0)
		return -1;
	if (route_table_build(b->cfg->routes, b->cfg->n_routes, &b->routes, err) < 0)
		return berr_wrap(err, "%s: routes", config_path);
	route_table_set_default_ttl(b->routes, b->cfg->default_ttl_secs);
	char log_dir[4096];
	if ((size_t)snprintf(log_dir, sizeof(log_dir), "%s/log", b->cfg->state_dir) >=
	    sizeof(log_dir))
		return berr_set(err, ENAMETOOLONG, "store %s", b->cfg->state_dir);
	struct store_options so = {.dir = log_dir,
				   .max_bytes = hub_config_store_bound(b->cfg),
				   .default_ttl_secs = b->cfg->default_ttl_secs,
				   .min_free_percent = b->cfg->min_free_percent,
				   .full = (enum store_full_policy)b->cfg->store_full};
	if (store_open(&so, &b->store, err) < 0)
		return -1;
	store_set_ready_cb(b->store, on_store_ready, b);
	b->store_events.fd = store_event_fd(b->store);
	b->store_events.on_event = on_store_event;
	if (broker_watch(b, &b->store_events, EPOLLIN, err) < 0)
		return -1;
	if (twins_sync(b, false, err) < 0 || sessions_load(b, err) < 0 || upstream_init(b, err) < 0)
		return -1;
	if (open_signals(b, err) < 0 || listener_open_unix(b, listen_fd, err) < 0 ||
	    listener_open_tcp(b, err) < 0 || control_open(b, err) < 0)
		return -1;
	gateway_listen_sync(b);
	b->next_expire_mono = b->mono_ms + TRIM_EVERY_MS;
	return 0;
}

static void tick(struct broker *b)
{
	for (struct client *c = b->clients; c; c = c->next) {
		if (c->state == CLIENT_NEW &&
		    b->mono_ms - c->accepted_mono > HUB_CONNECT_TIMEOUT_MS)
			client_close(c, LOG_LVL_WARN, false, "no CONNECT within %d s",
				     HUB_CONNECT_TIMEOUT_MS / 1000);
		else if (c->state == CLIENT_CONNECTED && c->keepalive &&
			 b->mono_ms - c->last_rx_mono > (int64_t)c->keepalive * 1500)
			client_close(c, LOG_LVL_WARN, true,
				     "keepalive: nothing received for 1.5 x %u s", c->keepalive);
	}
	methods_expire(b);
	gateway_http_tick(b);
	listener_resume(b);
	/* Cheap (whole segments at a time), and it lets appends held back
	 * for space go on as soon as there is some. */
	store_expire(b->store, b->now_ms);
	upstream_tick(b);
	gateway_listen_tick(b);
	if (b->mono_ms >= b->next_expire_mono) {
		/* After a burst, give freed heap pages back: the hub runs for
		 * months on small devices. */
		malloc_trim(64 * 1024);
		b->next_expire_mono = b->mono_ms + TRIM_EVERY_MS;
	}
}

int broker_run(struct broker *b)
{
	struct epoll_event events[64];
	int64_t next_tick = b->mono_ms + TICK_MS;
	log_info("hub ready: device %s, %zu module(s), %zu route(s)", b->cfg->device_id,
		 b->cfg->n_modules, b->cfg->n_routes);
	while (!b->stop) {
		broker_clock(b);
		int timeout = next_tick > b->mono_ms ? (int)(next_tick - b->mono_ms) : 0;
		int n = epoll_wait(b->epfd, events, ARRAY_SIZE(events), timeout);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			return -1;
		}
		broker_clock(b);
		for (int i = 0; i < n; i++) {
			struct hub_io *io = events[i].data.ptr;
			io->on_event(io, events[i].events);
		}
		if (b->mono_ms >= next_tick) {
			tick(b);
			next_tick = b->mono_ms + TICK_MS;
		}
		twins_flush(b);
		clients_send_queued(b);
		client_free_dead(b);
		control_free_closed(b);
		upstream_free_dead();
		gateway_http_free_closed(b);
	}
	return b->exit_code ? -1 : 0;
}

void broker_fini(struct broker *b)
{
	for (struct client *c = b->clients; c; c = c->next)
		if (c->state != CLIENT_CLOSED)
			client_close(c, LOG_LVL_DEBUG, false, "hub stopping");
	while (b->sessions)
		session_discard(b->sessions);
	client_free_dead(b);
	upstream_fini(b);
	upstream_free_dead();
	control_close_all(b);
	gateway_http_close_all(b);
	methods_free(b);
	gateway_listen_close(b);
	twins_free(b);
	if (b->own_socket && b->cfg && b->cfg->socket_path)
		unlink(b->cfg->socket_path);
	if (b->control_listener.fd >= 0 && b->cfg && b->cfg->control_path)
		unlink(b->cfg->control_path);
	int fds[] = {b->unix_listener.fd, b->tcp_listener.fd, b->control_listener.fd,
		     b->signals.fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	store_close(b->store);
	if (b->routes)
		route_table_free(b->routes);
	hub_config_free(b->cfg);
	tls_server_free(b->tls_ctx);
	hub_metrics_fini(&b->metrics);
	if (b->epfd >= 0)
		close(b->epfd);
}
