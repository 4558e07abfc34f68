/* One identity's connection upstream: a libmosquitto client whose socket is
 * in the hub's epoll loop. A new client is made for every attempt, so
 * nothing the library kept of an earlier connection (in-flight messages it
 * would send again on its own) outlives it: what was in flight goes back to
 * the store, which leases it again in order and never once it expired. */
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "common/lazy.h"
#include "common/log.h"
#include "common/sas.h"
#include "common/strbuf.h"
#include "hub/upstream_conn.h"

const char *upconn_state_name(enum upconn_state s)
{
	static const char *const names[] = {
	    [UPC_WAIT] = "waiting",	   [UPC_BLOCKED] = "blocked",
	    [UPC_RESOLVING] = "resolving", [UPC_CONNECTING] = "connecting",
	    [UPC_CONNECTED] = "connected", [UPC_RENEWING] = "renewing",
	};
	return names[s];
}

const struct hub_module *upconn_identity(struct upconn *c)
{
	return hub_config_module(c->up->b->cfg, c->module);
}

static struct broker *broker_of(struct upconn *c)
{
	return c->up->b;
}

static size_t window_of(struct upconn *c)
{
	size_t w = broker_of(c)->cfg->upstream.window;
	return c->probe_left ? 1 : w < c->cap ? w : c->cap;
}

/* Keeps the epoll registration in step with the client's socket. A socket
 * libmosquitto closed inside a call is already gone from epoll (the kernel
 * drops a closed descriptor), and nothing else ran in between that could
 * have been given the same number. */
static void conn_watch(struct upconn *c)
{
	struct broker *b = broker_of(c);
	int fd = c->mosq ? LAZY(mosquitto_socket)(c->mosq) : -1;
	if (fd != c->io.fd) {
		c->io.fd = -1;
		c->events = 0;
	}
	if (fd < 0)
		return;
	uint32_t want = EPOLLIN | (LAZY(mosquitto_want_write)(c->mosq) ? EPOLLOUT : 0);
	if (c->io.fd < 0) {
		c->io.fd = fd;
		struct epoll_event ev = {.events = want, .data.ptr = &c->io};
		if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			log_error("upstream %s: epoll: %s", c->module, strerror(errno));
		c->events = want;
	} else if (want != c->events) {
		struct epoll_event ev = {.events = want, .data.ptr = &c->io};
		epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
		c->events = want;
	}
}

/* Ends the client: its socket out of epoll, in-flight messages back to the
 * store (they go again, counted as resent). */
static void conn_teardown(struct upconn *c)
{
	struct broker *b = broker_of(c);
	for (size_t i = 0; c->inflight && i < c->cap; i++) {
		if (!c->inflight[i].mid)
			continue;
		store_release(b->store, c->endpoint, c->inflight[i].seq);
		c->inflight[i].mid = 0;
	}
	c->n_inflight = 0;
	c->inflight_bytes = 0;
	if (c->mosq) {
		if (c->io.fd >= 0 && LAZY(mosquitto_socket)(c->mosq) == c->io.fd)
			epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->io.fd, NULL);
		LAZY(mosquitto_destroy)(c->mosq);
		c->mosq = NULL;
	}
	c->io.fd = -1;
	c->events = 0;
	uptwin_reset(c);
}

static void conn_down(struct upconn *c, const char *why)
{
	struct broker *b = broker_of(c);
	bool was_up = c->state == UPC_CONNECTED || c->state == UPC_RENEWING;
	snprintf(c->last_error, sizeof(c->last_error), "%s", why);
	if (was_up || !c->down_since_ms)
		c->down_since_ms = b->now_ms;
	if (was_up)
		c->connected_since_ms = 0;
}

/* The attempt or connection failed: back off before the next one. When
 * messages were in flight, the next connection sends them one at a time,
 * and one that is alone in flight each time the connection closes is the
 * one the upstream refuses. */
static void conn_fail(struct upconn *c, const char *why)
{
	struct broker *b = broker_of(c);
	bool was_up = c->state == UPC_CONNECTED || c->state == UPC_RENEWING;
	/* Only the upstream closing the connection soon after the message went
	 * counts against it: timeouts and unreachable networks say nothing. */
	bool refusal = c->peer_closed && b->mono_ms - c->probe_sent_mono < UPSTREAM_REFUSAL_MS;
	c->peer_closed = false;
	if (c->n_inflight) {
		if (c->n_inflight == 1 && c->probe_left && refusal) {
			uint64_t seq = 0;
			for (size_t i = 0; i < c->cap; i++)
				if (c->inflight[i].mid)
					seq = c->inflight[i].seq;
			if (seq == c->suspect_seq) {
				c->suspect_strikes++;
			} else {
				c->suspect_seq = seq;
				c->suspect_strikes = 1;
			}
		}
		if (c->probe_left < c->n_inflight)
			c->probe_left = c->n_inflight;
	}
	if (c->suspect_strikes >= UPSTREAM_REFUSAL_STRIKES) {
		for (size_t i = 0; i < c->cap; i++)
			if (c->inflight[i].mid && c->inflight[i].seq == c->suspect_seq) {
				const struct hub_message *m = c->inflight[i].msg;
				HUB_COUNT(b, DROPPED, "refused_upstream", c->module,
					  m ? m->sys[MSG_SYS_OUTPUT_NAME] : "");
				store_ack(b->store, c->endpoint, c->suspect_seq);
				c->inflight[i].mid = 0;
				c->n_inflight--;
				c->inflight_bytes -= c->inflight[i].bytes;
			}
		c->counts.refused++;
		log_error("upstream %s: message %llu refused: the connection closed %d times with "
			  "it alone in flight (%s); dropped",
			  c->module, (unsigned long long)c->suspect_seq, UPSTREAM_REFUSAL_STRIKES,
			  why);
		c->suspect_strikes = 0;
		c->suspect_seq = 0;
		if (c->probe_left)
			c->probe_left--;
	}
	conn_teardown(c);
	conn_down(c, why);
	c->failures++;
	int64_t delay =
	    upstream_backoff_ms(b->cfg->upstream.backoff_min_ms, b->cfg->upstream.backoff_max_ms,
				c->failures, (double)random() / RAND_MAX);
	c->state = UPC_WAIT;
	c->next_attempt_mono = b->mono_ms + delay;
	log_msg(was_up || c->failures == 1 ? LOG_LVL_WARN : LOG_LVL_DEBUG,
		"upstream %s: %s; next attempt in %lld ms", c->module, why, (long long)delay);
}

void upconn_close(struct upconn *c, const char *why)
{
	if (c->mosq && (c->state == UPC_CONNECTED || c->state == UPC_RENEWING))
		LAZY(mosquitto_disconnect)(c->mosq);
	conn_teardown(c);
	if (c->state != UPC_WAIT && c->state != UPC_BLOCKED)
		conn_down(c, why);
	c->state = UPC_WAIT;
	c->next_attempt_mono = broker_of(c)->mono_ms;
}

void upconn_retry_now(struct upconn *c)
{
	if (c->state == UPC_WAIT || c->state == UPC_BLOCKED) {
		c->state = UPC_WAIT;
		c->failures = 0;
		c->next_attempt_mono = broker_of(c)->mono_ms;
	}
}

static struct upinflight *slot_of(struct upconn *c, int mid)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->inflight[i].mid == mid)
			return &c->inflight[i];
	return NULL;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct upconn *c = obj;
	c->connack = rc;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	struct upconn *c = obj;
	c->lost = true;
	c->lost_rc = rc;
}

static void on_log(struct mosquitto *m, void *obj, int level, const char *text)
{
	struct upconn *c = obj;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) {
		log_debug("upstream %s: libmosquitto: %s", c->module, text);
		/* "OpenSSL Error[0]: error:0A000086:SSL routines::certificate
		 * verify failed": the part after the last "::" says it. */
		const char *why = strstr(text, "::");
		for (const char *p = why; p; p = strstr(p + 2, "::"))
			why = p;
		if (why && !c->lib_error[0])
			snprintf(c->lib_error, sizeof(c->lib_error), "%s", why + 2);
	}
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	struct upconn *c = obj;
	struct broker *b = broker_of(c);
	struct upinflight *f = mid ? slot_of(c, mid) : NULL;
	if (!f)
		return;
	hub_metrics_sent(b, c->endpoint, f->msg, f->priority);
	store_ack(b->store, c->endpoint, f->seq);
	if (f->seq == c->suspect_seq) {
		c->suspect_seq = 0;
		c->suspect_strikes = 0;
	}
	f->mid = 0;
	c->n_inflight--;
	c->inflight_bytes -= f->bytes;
	c->counts.acked++;
	if (c->probe_left)
		c->probe_left--;
	c->last_activity_mono = b->mono_ms;
	c->want_pump = true;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct upconn *c = obj;
	if (msg && msg->topic && msg->payloadlen >= 0)
		uptwin_message(c, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static const char *lost_reason(struct upconn *c, char *buf, size_t cap)
{
	if (c->lost_rc == MOSQ_ERR_TLS)
		upstream_tls_take_error(c->lib_error, sizeof(c->lib_error));
	if (c->lost_rc == MOSQ_ERR_TLS && c->lib_error[0])
		snprintf(buf, cap, "TLS: %s", c->lib_error);
	else if (c->lost_rc == MOSQ_ERR_ERRNO && errno)
		snprintf(buf, cap, "connection lost: %s", strerror(errno));
	else if (c->lost_rc == MOSQ_ERR_KEEPALIVE)
		snprintf(buf, cap, "connection lost: no answer within the keepalive");
	else if (c->lost_rc == MOSQ_ERR_CONN_LOST || c->lost_rc == MOSQ_ERR_NO_CONN)
		snprintf(buf, cap, "connection closed by the upstream");
	else
		snprintf(buf, cap, "connection lost: %s", LAZY(mosquitto_strerror)(c->lost_rc));
	return buf;
}

/* Acts on what libmosquitto reported during a call that returned rc. */
static void after_call(struct upconn *c, int rc)
{
	struct broker *b = broker_of(c);
	char why[UPSTREAM_ERROR_MAX];
	if (c->connack >= 0 && c->state == UPC_CONNECTING) {
		int code = c->connack;
		c->connack = -1;
		if (code != 0) {
			snprintf(why, sizeof(why), "refused at CONNECT: %s (CONNACK %d)",
				 LAZY(mosquitto_connack_string)(code), code);
			conn_fail(c, why);
			return;
		}
		c->state = UPC_CONNECTED;
		c->failures = 0;
		c->connected_since_ms = b->now_ms;
		c->down_since_ms = 0;
		c->last_error[0] = '\0';
		c->last_activity_mono = b->mono_ms;
		c->renew_mono =
		    b->mono_ms + (int64_t)b->cfg->upstream.token_ttl_secs * 1000 * 4 / 5;
		log_info("upstream %s: connected to %s", c->module, c->up->url_text);
		c->want_pump = true;
		if (b->cfg->upstream.twins)
			uptwin_connected(c);
	}
	if (rc != MOSQ_ERR_SUCCESS && !c->lost) {
		c->lost = true;
		c->lost_rc = rc;
	}
	if (c->lost) {
		c->lost = false;
		if (c->state == UPC_RENEWING && c->lost_rc == 0) {
			/* Our own DISCONNECT: reconnect with a new token at once. */
			conn_teardown(c);
			c->state = UPC_WAIT;
			c->next_attempt_mono = b->mono_ms;
			log_info("upstream %s: renewing its token", c->module);
			return;
		}
		c->peer_closed = c->lost_rc == MOSQ_ERR_CONN_LOST ||
				 c->lost_rc == MOSQ_ERR_NO_CONN ||
				 (c->lost_rc == MOSQ_ERR_ERRNO && errno == ECONNRESET);
		conn_fail(c, lost_reason(c, why, sizeof(why)));
		return;
	}
	if (c->want_pump)
		upconn_pump(c);
	else
		conn_watch(c);
}

static void on_io(struct hub_io *io, uint32_t events)
{
	struct upconn *c = (struct upconn *)((char *)io - offsetof(struct upconn, io));
	if (!c->mosq)
		return;
	int rc = MOSQ_ERR_SUCCESS;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = LAZY(mosquitto_loop_read)(c->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && LAZY(mosquitto_socket)(c->mosq) >= 0 &&
	    (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		rc = LAZY(mosquitto_loop_write)(c->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && !c->lost && (events & (EPOLLERR | EPOLLHUP)) &&
	    LAZY(mosquitto_socket)(c->mosq) == io->fd) {
		/* The library did not notice: say why the socket failed. */
		int e = 0;
		socklen_t len = sizeof(e);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &e, &len);
		c->lost = true;
		c->lost_rc = MOSQ_ERR_ERRNO;
		errno = e ? e : ECONNRESET;
	}
	after_call(c, rc);
}

struct upconn *upconn_new(struct upstream *up, const char *module)
{
	struct upconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cap = up->b->cfg->upstream.window;
	c->inflight = calloc(c->cap, sizeof(*c->inflight));
	c->module = strdup(module);
	if (!c->inflight || !c->module ||
	    upstream_endpoint(module, c->endpoint, sizeof(c->endpoint))) {
		free(c->inflight);
		free(c->module);
		free(c);
		return NULL;
	}
	c->up = up;
	c->io.fd = -1;
	c->io.on_event = on_io;
	c->connack = -1;
	c->state = UPC_WAIT;
	c->next_attempt_mono = up->b->mono_ms;
	c->last_activity_mono = up->b->mono_ms;
	return c;
}

static void conn_release(void *p)
{
	struct upconn *c = p;
	free(c->patch_values);
	free(c->inflight);
	free(c->module);
	free(c);
}

void upconn_free(struct upconn *c)
{
	if (!c)
		return;
	conn_teardown(c);
	upstream_bury(c, conn_release);
}

static int conn_password(struct upconn *c, const struct hub_module *id, char *out, size_t cap,
			 struct berr *err)
{
	struct broker *b = broker_of(c);
	char resource[SAS_RESOURCE_MAX];
	if (sas_resource(b->cfg->hostname, b->cfg->device_id, c->module, resource,
			 sizeof(resource)) < 0)
		return berr_set(err, ENAMETOOLONG, "identity");
	int64_t expiry = (int64_t)time(NULL) + b->cfg->upstream.token_ttl_secs;
	return sas_token_make(id->key, resource, expiry, out, cap, err);
}

static void conn_attempt(struct upconn *c)
{
	struct upstream *up = c->up;
	struct broker *b = up->b;
	const struct hub_module *id = upconn_identity(c);
	if (!id || !id->identity_ready) {
		if (c->state != UPC_BLOCKED)
			log_info("upstream %s: waiting: %s", c->module,
				 id ? "its identity is not in IoT Hub yet"
				    : "the module is not in the deployment");
		c->state = UPC_BLOCKED;
		snprintf(c->last_error, sizeof(c->last_error), "%s",
			 id ? "waiting for its identity in IoT Hub"
			    : "not in the deployment (no key to connect with)");
		if (!c->down_since_ms)
			c->down_since_ms = b->now_ms;
		return;
	}
	const char *host = up->url.host;
	if (!url_host_is_address(host)) {
		if (!up->addr[0] || b->mono_ms - up->addr_mono > UPSTREAM_RESOLVED_FOR_MS) {
			struct berr err;
			c->state = UPC_RESOLVING;
			if (!up->resolver && upstream_resolve_start(up, &err) < 0)
				conn_fail(c, err.msg);
			return;
		}
		host = up->addr;
	}
	char client_id[2 * HUB_NAME_MAX + 2], user[URL_HOST_MAX + 2 * HUB_NAME_MAX + 64];
	char password[SAS_TOKEN_MAX];
	snprintf(client_id, sizeof(client_id), "%s/%s", b->cfg->device_id, c->module);
	snprintf(user, sizeof(user), "%s/%s/%s/?api-version=" UPSTREAM_API_VERSION,
		 b->cfg->hostname, b->cfg->device_id, c->module);
	struct berr err;
	if (conn_password(c, id, password, sizeof(password), &err) < 0) {
		conn_fail(c, err.msg);
		return;
	}
	c->mosq = LAZY(mosquitto_new)(client_id, true, c);
	if (!c->mosq) {
		explicit_bzero(password, sizeof(password));
		conn_fail(c, "out of memory");
		return;
	}
	LAZY(mosquitto_int_option)(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	LAZY(mosquitto_int_option)(c->mosq, MOSQ_OPT_SEND_MAXIMUM, (int)b->cfg->upstream.window);
	LAZY(mosquitto_int_option)(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	if (up->ssl_ctx) {
		/* berth's context as it is: libmosquitto's defaults would
		 * replace its trust settings. */
		LAZY(mosquitto_int_option)(c->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		LAZY(mosquitto_void_option)(c->mosq, MOSQ_OPT_SSL_CTX, up->ssl_ctx);
	}
	LAZY(mosquitto_log_callback_set)(c->mosq, on_log);
	LAZY(mosquitto_connect_callback_set)(c->mosq, on_connect);
	LAZY(mosquitto_disconnect_callback_set)(c->mosq, on_disconnect);
	LAZY(mosquitto_publish_callback_set)(c->mosq, on_publish);
	LAZY(mosquitto_message_callback_set)(c->mosq, on_message);
	int rc = LAZY(mosquitto_username_pw_set)(c->mosq, user, password);
	explicit_bzero(password, sizeof(password));
	c->connack = -1;
	c->lost = false;
	c->lib_error[0] = '\0';
	upstream_tls_take_error(NULL, 0); /* nothing left from another attempt */
	c->attempt_mono = b->mono_ms;
	c->state = UPC_CONNECTING;
	if (rc == MOSQ_ERR_SUCCESS) {
		errno = 0;
		rc = LAZY(mosquitto_connect_async)(c->mosq, host, up->url.port,
						   (int)b->cfg->upstream.keepalive_secs);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		char why[UPSTREAM_ERROR_MAX];
		snprintf(why, sizeof(why), "cannot connect to %s:%u: %s", host, up->url.port,
			 rc == MOSQ_ERR_ERRNO && errno ? strerror(errno)
						       : LAZY(mosquitto_strerror)(rc));
		if (host == up->addr)
			up->addr[0] = '\0'; /* look the name up again next time */
		conn_fail(c, why);
		return;
	}
	conn_watch(c);
}

void upconn_step(struct upconn *c)
{
	struct broker *b = broker_of(c);
	switch (c->state) {
	case UPC_BLOCKED:
	case UPC_WAIT:
		if (b->mono_ms >= c->next_attempt_mono || c->state == UPC_BLOCKED)
			conn_attempt(c);
		break;
	case UPC_RESOLVING:
		if (!c->up->resolver) {
			if (c->up->addr[0]) {
				conn_attempt(c);
			} else {
				char why[UPSTREAM_ERROR_MAX + 64];
				snprintf(why, sizeof(why), "cannot resolve %s: %s", c->up->url.host,
					 c->up->resolve_error);
				conn_fail(c, why);
			}
		}
		break;
	case UPC_CONNECTING:
		if (b->mono_ms - c->attempt_mono > UPSTREAM_CONNECT_MS) {
			char why[UPSTREAM_ERROR_MAX];
			snprintf(why, sizeof(why), "no CONNACK from %s within %d s",
				 c->up->url_text, UPSTREAM_CONNECT_MS / 1000);
			conn_fail(c, why);
		}
		break;
	case UPC_CONNECTED:
		if (b->mono_ms >= c->renew_mono) {
			/* IoT Hub closes a connection when its token expires: a new
			 * one is presented before, once what is in flight is acked. */
			c->state = UPC_RENEWING;
			c->renew_deadline_mono = b->mono_ms + UPSTREAM_RENEW_DRAIN_MS;
		}
		/* fall through */
	case UPC_RENEWING:
		if (c->state == UPC_RENEWING &&
		    (c->n_inflight == 0 || b->mono_ms >= c->renew_deadline_mono)) {
			LAZY(mosquitto_disconnect)(c->mosq);
			c->lost = true;
			c->lost_rc = 0;
			after_call(c, MOSQ_ERR_SUCCESS);
			return;
		}
		after_call(c, LAZY(mosquitto_loop_misc)(c->mosq));
		break;
	}
}

/* Only this connection's endpoint ("$upstream/a" is also a prefix of
 * "$upstream/ab"). */
static bool is_endpoint(const char *endpoint, void *arg)
{
	return !strcmp(endpoint, ((struct upconn *)arg)->endpoint);
}

void upconn_pump(struct upconn *c)
{
	struct broker *b = broker_of(c);
	c->want_pump = false;
	struct strbuf topic = STRBUF_INIT;
	/* libmosquitto writes each packet at once: when more than one goes in
	 * a turn, the socket is corked meanwhile, so they leave in full
	 * segments and not one segment (and loopback receive work) each. */
	int fd = -1, sent = 0;
	while (c->state == UPC_CONNECTED && c->n_inflight < window_of(c) &&
	       (c->n_inflight == 0 || c->inflight_bytes < UPSTREAM_INFLIGHT_BYTES)) {
		struct store_item it;
		if (store_lease(b->store, c->endpoint, is_endpoint, c, b->now_ms, &it) != 0)
			break;
		c->last_activity_mono = b->mono_ms;
		if (it.expires_ms <= b->now_ms) {
			HUB_COUNT(b, DROPPED, "ttl_expiry", c->module,
				  it.msg->sys[MSG_SYS_OUTPUT_NAME]);
			store_ack(b->store, c->endpoint, it.seq);
			c->counts.expired++;
			continue;
		}
		strbuf_reset(&topic);
		if (upstream_topic(b->cfg->device_id, c->module, it.msg, &topic) < 0) {
			store_release(b->store, c->endpoint, it.seq);
			break;
		}
		size_t size = topic.len + it.msg->body_len;
		if (size > UPSTREAM_MESSAGE_MAX) {
			HUB_COUNT(b, DROPPED, "too_large", c->module,
				  it.msg->sys[MSG_SYS_OUTPUT_NAME]);
			store_ack(b->store, c->endpoint, it.seq);
			c->counts.refused++;
			log_error(
			    "upstream %s: message %llu is %zu bytes with its properties, over "
			    "IoT Hub's limit of %d; dropped",
			    c->module, (unsigned long long)it.seq, size, UPSTREAM_MESSAGE_MAX);
			continue;
		}
		if (sent == 1 && (fd = LAZY(mosquitto_socket)(c->mosq)) >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_CORK, &(int){1}, sizeof(int));
		struct upinflight *slot = slot_of(c, 0);
		int mid = 0;
		int rc = LAZY(mosquitto_publish)(c->mosq, &mid, topic.buf, (int)it.msg->body_len,
						 it.msg->body, 1, false);
		if (rc != MOSQ_ERR_SUCCESS || !slot || !mid) {
			store_release(b->store, c->endpoint, it.seq);
			if (rc == MOSQ_ERR_SUCCESS)
				break;
			c->lost = true;
			c->lost_rc = rc;
			break;
		}
		slot->mid = mid;
		slot->seq = it.seq;
		slot->msg = it.msg;
		slot->priority = it.priority;
		c->probe_sent_mono = b->mono_ms;
		slot->bytes = size;
		c->n_inflight++;
		c->inflight_bytes += size;
		sent++;
		c->counts.sent++;
		if (it.redelivery)
			c->counts.resent++;
	}
	strbuf_release(&topic);
	if (fd >= 0 && c->mosq && LAZY(mosquitto_socket)(c->mosq) == fd)
		setsockopt(fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	if (c->lost) {
		after_call(c, MOSQ_ERR_SUCCESS);
		return;
	}
	conn_watch(c);
}
