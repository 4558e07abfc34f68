/* The control socket (root only): one JSON request per connection,
 *   {"op":"invoke",...}  a direct method (methods.c), answered when the
 *                        module answers or the call times out
 *   {"op":"reload"}      re-read the config (as SIGHUP)
 *   {"op":"status"}      connected clients, routes, queues
 *   {"op":"metrics"}     hub/metrics.h, as Prometheus text (the only answer
 *                        that is not JSON); the end of it is the close
 *   {"op":"twin","module":"m"}  that module's twin
 * and hub_control_call(), the client side used by `berth invoke` and the
 * daemon. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sock.h"
#include "hub/control.h"
#include "hub/hub.h"
#include "hub/upstream.h"

static void control_close(struct control_conn *cc)
{
	if (cc->closed)
		return;
	cc->closed = true;
	methods_forget(cc->b, cc);
	broker_unwatch(cc->b, &cc->io);
	close(cc->io.fd);
	cc->io.fd = -1;
}

void control_free_closed(struct broker *b)
{
	struct control_conn **cp = &b->controls;
	while (*cp) {
		struct control_conn *cc = *cp;
		if (!cc->closed) {
			cp = &cc->next;
			continue;
		}
		*cp = cc->next;
		strbuf_release(&cc->in);
		strbuf_release(&cc->out);
		free(cc);
	}
}

void control_close_all(struct broker *b)
{
	for (struct control_conn *cc = b->controls; cc; cc = cc->next)
		control_close(cc);
	control_free_closed(b);
}

static void control_write(struct control_conn *cc)
{
	while (cc->off < cc->out.len) {
		ssize_t n = send(cc->io.fd, cc->out.buf + cc->off, cc->out.len - cc->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = &cc->io};
			epoll_ctl(cc->b->epfd, EPOLL_CTL_MOD, cc->io.fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		cc->off += (size_t)n;
	}
	control_close(cc);
}

void control_reply(struct control_conn *cc, const char *json)
{
	if (cc->closed)
		return;
	strbuf_reset(&cc->out);
	if (strbuf_puts(&cc->out, json) < 0 || strbuf_puts(&cc->out, "\n") < 0) {
		control_close(cc);
		return;
	}
	cc->off = 0;
	control_write(cc);
}

static void reply_status_only(struct control_conn *cc, int status, const char *error)
{
	yajl_gen g = json_gen_new(false);
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
		     json_gen_key_int(g, "status", status) == 0 &&
		     (!error || json_gen_key_str(g, "error", error) == 0) &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	cleanup_free char *out = json_gen_done_if(g, built, NULL);
	control_reply(cc, out ? out : "{\"status\":500}");
}

struct stats_gen {
	yajl_gen g;
	int64_t now_ms;
};

static void gen_store_stats(const struct store_stats *st, void *arg)
{
	struct stats_gen *sg = arg;
	yajl_gen g = sg->g;
	json_gen_str(g, st->endpoint);
	yajl_gen_map_open(g);
	json_gen_key_int(g, "messages", (long long)st->messages);
	json_gen_key_int(g, "leased", (long long)st->leased);
	json_gen_key_int(g, "bytes", (long long)st->bytes);
	long long age =
	    st->oldest_ms && sg->now_ms > st->oldest_ms ? (sg->now_ms - st->oldest_ms) / 1000 : 0;
	json_gen_key_int(g, "oldest_age_secs", st->oldest_ms ? age : -1);
	json_gen_key_int(g, "expired", (long long)st->expired);
	json_gen_str(g, "dropped");
	yajl_gen_map_open(g);
	json_gen_key_int(g, "full", (long long)st->dropped_full);
	json_gen_key_int(g, "damaged", (long long)st->dropped_damaged);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void gen_store_totals(struct broker *b, yajl_gen g)
{
	struct store_totals t;
	store_get_totals(b->store, &t);
	json_gen_str(g, "store");
	yajl_gen_map_open(g);
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/log", b->cfg->state_dir);
	json_gen_key_str(g, "dir", dir);
	json_gen_key_int(g, "bytes", (long long)t.bytes);
	json_gen_key_int(g, "max_bytes", (long long)t.max_bytes);
	json_gen_key_int(g, "free_bytes", (long long)t.free_bytes);
	json_gen_key_int(g, "floor_bytes", (long long)t.floor_bytes);
	json_gen_key_int(g, "min_free_percent", b->cfg->min_free_percent);
	json_gen_key_str(g, "store_full",
			 store_full_policy_name((enum store_full_policy)b->cfg->store_full));
	json_gen_key_bool(g, "full", t.full);
	json_gen_key_int(g, "segments", (long long)t.segments);
	json_gen_key_int(g, "held_back", (long long)t.held_back);
	json_gen_key_int(g, "refused", (long long)t.refused);
	json_gen_key_int(g, "dropped_full", (long long)t.dropped_full);
	json_gen_key_int(g, "write_errors", (long long)t.write_errors);
	json_gen_key_int(g, "commits", (long long)t.commits);
	json_gen_key_int(g, "syncs", (long long)t.syncs);
	json_gen_key_int(g, "damaged_at_open", (long long)t.damaged);
	json_gen_key_int(g, "cut_at_open", (long long)t.cut_bytes);
	json_gen_key_int(g, "recovered", (long long)t.recovered);
	json_gen_key_int(g, "open_ms", (long long)t.opened_ms);
	yajl_gen_map_close(g);
}

static void reply_status(struct control_conn *cc)
{
	struct broker *b = cc->b;
	yajl_gen g = json_gen_new(false);
	if (!g) {
		reply_status_only(cc, 500, "out of memory");
		return;
	}
	yajl_gen_map_open(g);
	json_gen_key_int(g, "status", 200);
	json_gen_key_str(g, "device_id", b->cfg->device_id);
	json_gen_str(g, "clients");
	yajl_gen_array_open(g);
	for (struct client *c = b->clients; c; c = c->next) {
		if (c->state != CLIENT_CONNECTED)
			continue;
		yajl_gen_map_open(g);
		json_gen_key_str(g, "client_id", c->session->client_id);
		json_gen_key_str(g, "transport", c->tcp ? (c->tls ? "tls" : "tcp") : "unix");
		if (!c->tcp)
			json_gen_key_int(g, "pid", c->pid);
		json_gen_key_bool(g, "persistent", c->session->persistent);
		long long subs = 0;
		for (struct subscription *sub = c->session->subs; sub; sub = sub->next)
			subs++;
		json_gen_key_int(g, "subscriptions", subs);
		json_gen_key_int(g, "in_flight", (long long)c->session->n_inflight);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	json_gen_key_int(g, "connections", (long long)b->n_clients);
	long long before_connect = 0;
	for (struct client *c = b->clients; c; c = c->next)
		if (c->state == CLIENT_NEW)
			before_connect += (long long)c->rcap;
	json_gen_key_int(g, "input_buffered_before_connect", before_connect);
	json_gen_key_int(g, "routes", (long long)b->cfg->n_routes);
	json_gen_key_int(g, "store_bytes", (long long)store_bytes(b->store));
	gen_store_totals(b, g);
	json_gen_str(g, "queues");
	yajl_gen_map_open(g);
	struct stats_gen sg = {g, b->now_ms};
	store_foreach(b->store, gen_store_stats, &sg);
	struct store_stats up;
	if (upstream_queue_stats(b, &up))
		gen_store_stats(&up, &sg);
	yajl_gen_map_close(g);
	upstream_gen_status(b, g);
	yajl_gen_map_close(g);
	cleanup_free char *out = json_gen_done(g, NULL);
	control_reply(cc, out ? out : "{\"status\":500}");
}

/* The metrics as Prometheus text (not JSON), then the connection closes. */
static void reply_metrics(struct control_conn *cc)
{
	strbuf_reset(&cc->out);
	cc->out.max = HUB_METRICS_TEXT_MAX;
	if (hub_metrics_render(cc->b, &cc->out) < 0) {
		cc->out.max = 0;
		reply_status_only(cc, 500, "metrics: out of memory or over 4 MiB");
		return;
	}
	cc->off = 0;
	control_write(cc);
}

static void reply_twin(struct control_conn *cc, yajl_val req)
{
	const char *module = json_str(json_get(req, "module"));
	struct twin *t = module ? twins_get(cc->b, module) : NULL;
	if (!t) {
		reply_status_only(cc, 404, "no such module");
		return;
	}
	cleanup_free char *twin = twin_get_json(t, NULL);
	struct strbuf out = STRBUF_INIT;
	/* synced: the desired properties are the cloud's (the twin cache). */
	struct module_twin *mt = twins_find(cc->b, module);
	if (!twin || strbuf_printf(&out, "{\"status\":200,\"cloud\":%s,\"synced\":%s,\"twin\":%s}",
				   twins_from_cloud(cc->b) ? "true" : "false",
				   mt && mt->synced ? "true" : "false", twin) < 0) {
		strbuf_release(&out);
		reply_status_only(cc, 500, "out of memory");
		return;
	}
	control_reply(cc, out.buf);
	strbuf_release(&out);
}

/* {"op":"twin_report","module":"m","reported":{..}} makes the reported
 * properties exactly these (the daemon's $edgeAgent report); with "patch"
 * instead it merges a patch, as a module's PATCH does. */
static void twin_report(struct control_conn *cc, yajl_val req)
{
	struct broker *b = cc->b;
	const char *module = json_str(json_get(req, "module"));
	struct twin *t = module ? twins_get(b, module) : NULL;
	yajl_val reported = json_get(req, "reported"), patch = json_get(req, "patch");
	if (!t) {
		reply_status_only(cc, 404, "no such module");
		return;
	}
	struct berr err;
	int rc;
	if (reported && YAJL_IS_OBJECT(reported)) {
		rc = twin_set_reported(t, reported, 0, b->now_ms, &err);
	} else if (patch && YAJL_IS_OBJECT(patch)) {
		yajl_gen g = json_gen_new(false);
		cleanup_free char *text = NULL;
		size_t len = 0;
		text = json_gen_done_if(g, g && json_gen_val(g, patch) == 0, &len);
		int64_t version;
		rc = text ? twin_patch_reported(t, text, len, b->now_ms, &version, &err)
			  : berr_set(&err, ENOMEM, "patch");
	} else {
		rc = berr_set(&err, 0, "\"reported\" or \"patch\" (an object) is missing");
	}
	if (rc < 0) {
		reply_status_only(cc, 400, err.msg);
		return;
	}
	twins_changed(b, module);
	upstream_twin_changed(b, module);
	reply_status_only(cc, 200, NULL);
}

static void handle_request(struct control_conn *cc, const char *line, size_t len)
{
	yajl_val req;
	struct berr err;
	if (json_parse(line, len, CONTROL_REQUEST_MAX, "control request", &req, &err) < 0) {
		reply_status_only(cc, 400, err.msg);
		return;
	}
	const char *op = json_str(json_get(req, "op"));
	if (!op)
		reply_status_only(cc, 400, "request has no \"op\"");
	else if (!strcmp(op, "invoke"))
		methods_invoke(cc->b, cc, req);
	else if (!strcmp(op, "reload")) {
		if (broker_reload(cc->b, &err) < 0)
			reply_status_only(cc, 400, err.msg);
		else
			reply_status_only(cc, 200, NULL);
	} else if (!strcmp(op, "status"))
		reply_status(cc);
	else if (!strcmp(op, "twin"))
		reply_twin(cc, req);
	else if (!strcmp(op, "twin_report"))
		twin_report(cc, req);
	else if (!strcmp(op, "metrics"))
		reply_metrics(cc);
	else
		reply_status_only(cc, 400, "unknown op");
	yajl_tree_free(req);
}

static void on_control_event(struct hub_io *io, uint32_t events)
{
	struct control_conn *cc = (struct control_conn *)io;
	if (cc->closed)
		return;
	if (events & EPOLLOUT) {
		control_write(cc);
		return;
	}
	if (cc->request_taken) {
		/* Waiting for a method's answer: nothing more is read (a peer
		 * that half-closed still gets its answer). */
		struct epoll_event ev = {.events = 0, .data.ptr = io};
		epoll_ctl(cc->b->epfd, EPOLL_CTL_MOD, io->fd, &ev);
		return;
	}
	char buf[4096];
	ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		control_close(cc);
		return;
	}
	if (strbuf_append(&cc->in, buf, (size_t)n) < 0) {
		cc->request_taken = true;
		reply_status_only(cc, 400, "request too long");
		return;
	}
	char *nl = memchr(cc->in.buf, '\n', cc->in.len);
	if (!nl)
		return;
	cc->request_taken = true;
	handle_request(cc, cc->in.buf, (size_t)(nl - cc->in.buf));
}

static void on_control_accept(struct hub_io *io, uint32_t events)
{
	struct broker *b =
	    (struct broker *)((char *)io - offsetof(struct broker, control_listener));
	int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		listener_accept_failed(b, b->cfg->control_path);
		return;
	}
	struct ucred cred = {0};
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("control socket: refusing uid %u", (unsigned)cred.uid);
		close(fd);
		return;
	}
	struct control_conn *cc = calloc(1, sizeof(*cc));
	struct berr err;
	if (!cc) {
		close(fd);
		return;
	}
	cc->io.fd = fd;
	cc->io.on_event = on_control_event;
	cc->b = b;
	cc->in.max = CONTROL_REQUEST_MAX;
	if (broker_watch(b, &cc->io, EPOLLIN, &err) < 0) {
		close(fd);
		free(cc);
		return;
	}
	cc->next = b->controls;
	b->controls = cc;
}

int control_open(struct broker *b, struct berr *err)
{
	const char *path = b->cfg->control_path;
	if (!path)
		return 0;
	/* Root's alone from the start: nobody else may ever connect. */
	int fd = unix_listen(path, 0600, 16, SOCK_NONBLOCK, "control socket", err);
	if (fd < 0)
		return -1;
	b->control_listener.fd = fd;
	b->control_listener.on_event = on_control_accept;
	return broker_watch(b, &b->control_listener, EPOLLIN, err);
}

int hub_control_call(const char *control_socket, const char *request, int timeout_ms, char **reply,
		     struct berr *err)
{
	*reply = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(control_socket) >= sizeof(sa.sun_path))
		return berr_set(err, ENAMETOOLONG, "hub control socket %s", control_socket);
	strcpy(sa.sun_path, control_socket);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berr_set(err, errno, "hub control socket %s (is the hub running?)",
				control_socket);
	size_t len = strlen(request), off = 0;
	int64_t deadline = mono_ms() + timeout_ms;
	struct strbuf in = STRBUF_INIT;
	in.max = CONTROL_REQUEST_MAX;
	bool sent_nl = false;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			strbuf_release(&in);
			return berr_set(err, ETIMEDOUT, "hub control socket %s: no answer",
					control_socket);
		}
		struct pollfd pfd = {.fd = fd,
				     .events = (off < len || !sent_nl) ? POLLOUT : POLLIN};
		int n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			strbuf_release(&in);
			return berr_set(err, errno, "poll");
		}
		if (n == 0)
			continue;
		if (pfd.events & POLLOUT) {
			ssize_t w = off < len ? send(fd, request + off, len - off, MSG_NOSIGNAL)
					      : send(fd, "\n", 1, MSG_NOSIGNAL);
			if (w < 0 && errno != EINTR && errno != EAGAIN) {
				strbuf_release(&in);
				return berr_set(err, errno, "hub control socket %s",
						control_socket);
			}
			if (w > 0 && off < len)
				off += (size_t)w;
			else if (w > 0)
				sent_nl = true;
			continue;
		}
		char buf[4096];
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			strbuf_release(&in);
			return berr_set(err, r < 0 ? errno : 0,
					"hub control socket %s: closed without an answer",
					control_socket);
		}
		if (strbuf_append(&in, buf, (size_t)r) < 0) {
			strbuf_release(&in);
			return berr_set(err, EFBIG, "hub control socket: answer too long");
		}
		char *nl = memchr(in.buf, '\n', in.len);
		if (nl) {
			*nl = '\0';
			*reply = strbuf_detach(&in);
			return 0;
		}
	}
}
