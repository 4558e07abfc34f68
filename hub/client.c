/* One connection: bounded input and output buffers, packet framing and
 * dispatch to the protocol steps, and closing. A bad packet closes only its
 * own connection, with a line naming the client. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/broker.h"
#include "hub/upstream.h"

#define READ_CHUNK	16384
#define READ_CHUNK_NEW	2048 /* before CONNECT, which is a few hundred bytes */
#define READS_PER_EVENT 8
#define RBUF_KEEP	(64 * 1024) /* a larger input buffer shrinks once drained */
#define WBUF_KEEP	4096	    /* an idle client keeps at most this much output buffer */
#define WBUF_COMPACT	(64 * 1024)

static size_t wbuf_max(const struct client *c)
{
	return 2 * c->b->cfg->max_packet + CLIENT_WBUF_HIGH;
}

size_t client_unsent(const struct client *c)
{
	return c->wbuf.len - c->woff;
}

/* The first input buffer of a connection before CONNECT; TLS reads whole
 * records of up to 16 KiB. */
static size_t preauth_base(const struct client *c)
{
	return c->tls ? READ_CHUNK : READ_CHUNK_NEW;
}

/* Keeps broker.preauth_bytes equal to what connections before CONNECT hold
 * beyond their first buffer; call after rcap or the state changed. */
static void preauth_account(struct client *c)
{
	size_t want =
	    c->state == CLIENT_NEW && c->rcap > preauth_base(c) ? c->rcap - preauth_base(c) : 0;
	c->b->preauth_bytes = c->b->preauth_bytes - c->preauth_counted + want;
	c->preauth_counted = want;
}

static bool reading_paused(const struct client *c)
{
	return c->n_acks >= CLIENT_PENDING_ACKS || client_unsent(c) > wbuf_max(c) ||
	       c->close_after_flush;
}

void client_update_events(struct client *c)
{
	if (c->state == CLIENT_CLOSED)
		return;
	uint32_t want = 0;
	if (!reading_paused(c) || (c->tls && !c->tls_ready))
		want |= EPOLLIN;
	if (c->send_queued)
		want |= c->events & EPOLLOUT; /* the end of the turn decides */
	else if (client_unsent(c) > 0 || c->tls_want_write)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	struct epoll_event ev = {.events = want, .data.ptr = &c->io};
	if (epoll_ctl(c->b->epfd, EPOLL_CTL_MOD, c->io.fd, &ev) == 0)
		c->events = want;
}

void client_set_identity(struct client *c, const char *client_id)
{
	const char *peer = strchr(c->label, '(');
	char copy[CLIENT_LABEL_MAX];
	snprintf(copy, sizeof(copy), "%s", peer ? peer : "");
	snprintf(c->label, sizeof(c->label), "%.100s %s", client_id, copy);
}

void client_log_refusal(struct client *c, int level, const char *fmt, ...)
{
	char why[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->refusals++;
	if (c->refusals > CLIENT_REFUSALS_LOGGED)
		level = LOG_LVL_DEBUG;
	log_msg((enum log_level)level, "%s: %s%s", c->label, why,
		c->refusals == CLIENT_REFUSALS_LOGGED
		    ? " (further refusals on this connection are logged at debug level)"
		    : "");
}

static void on_client_event(struct hub_io *io, uint32_t events);

struct client *client_new(struct broker *b, int fd, bool tcp, const char *peer)
{
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("connection from %s: out of memory", peer);
		close(fd);
		return NULL;
	}
	c->io.fd = fd;
	c->io.on_event = on_client_event;
	c->b = b;
	c->id = b->next_client_id++;
	c->tcp = tcp;
	c->pidfd = -1;
	c->state = CLIENT_NEW;
	c->accepted_mono = c->last_rx_mono = b->mono_ms;
	c->acks_tail = &c->acks;
	snprintf(c->label, sizeof(c->label), "connection %llu (%s)", (unsigned long long)c->id,
		 peer);
	struct berr err;
	c->events = EPOLLIN;
	if (broker_watch(b, &c->io, EPOLLIN, &err) < 0) {
		log_error("%s: %s", c->label, err.msg);
		close(fd);
		free(c);
		return NULL;
	}
	c->next = b->clients;
	if (b->clients)
		b->clients->prev = c;
	b->clients = c;
	b->n_clients++;
	log_debug("%s: accepted", c->label);
	return c;
}

static void publish_will(struct client *c)
{
	struct out_msg *w = c->will;
	struct session *s = c->session;
	const char *bag;
	size_t bag_len;
	enum acl_publish kind = acl_publish(c->b->cfg->device_id, s->module, w->topic,
					    strlen(w->topic), &bag, &bag_len);
	if (kind != ACL_PUB_TELEMETRY) {
		log_warn(
		    "%s: will message to %.200s refused: a module's will may only go to its own "
		    "messages/events",
		    c->label, w->topic);
		return;
	}
	struct berr err;
	if (routing_submit(c->b, s->module, bag, bag_len, w->payload, w->len, NULL, &err) < 0)
		log_warn("%s: will message dropped: %s", c->label, err.msg);
	else
		log_info("%s: will message published to %.200s", c->label, w->topic);
}

void client_close(struct client *c, int level, bool will, const char *fmt, ...)
{
	if (c->state == CLIENT_CLOSED)
		return;
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_msg((enum log_level)level, "%s: %s; connection closed", c->label, why);
	bool was_connected = c->state == CLIENT_CONNECTED;
	c->state = CLIENT_CLOSED;
	preauth_account(c);
	broker_unwatch(c->b, &c->io);
	if (will && was_connected && c->will && c->session)
		publish_will(c);
	out_msg_free(c->will);
	c->will = NULL;
	/* PUBACKs still waiting for the store: the store's callback frees them. */
	while (c->acks) {
		struct pending_ack *a = c->acks;
		c->acks = a->next;
		if (a->done)
			free(a);
		else
			a->client = NULL;
	}
	c->acks_tail = &c->acks;
	c->n_acks = 0;
	struct session *s = c->session;
	c->session = NULL;
	if (s && was_connected)
		HUB_COUNT(c->b, DISCONNECT, s->module);
	if (s) {
		s->client = NULL;
		upstream_twin_client(c->b, s->client_id, false);
		if (s->persistent)
			session_detach(s);
		else
			session_discard(s);
	}
	tls_session_free(c->tls);
	c->tls = NULL;
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = -1;
	close(c->io.fd);
	c->io.fd = -1;
	c->b->n_clients--;
}

void client_free_dead(struct broker *b)
{
	for (struct client **p = &b->send_queue; *p;) {
		if ((*p)->state == CLIENT_CLOSED) {
			(*p)->send_queued = false;
			*p = (*p)->send_next;
		} else {
			p = &(*p)->send_next;
		}
	}
	while (b->discarded) {
		struct session *s = b->discarded;
		b->discarded = s->next;
		session_free(s);
	}
	struct client *c = b->clients;
	while (c) {
		struct client *next = c->next;
		if (c->state == CLIENT_CLOSED) {
			if (c->prev)
				c->prev->next = c->next;
			else
				b->clients = c->next;
			if (c->next)
				c->next->prev = c->prev;
			free(c->rbuf);
			strbuf_release(&c->wbuf);
			free(c);
		}
		c = next;
	}
}

int client_send_soon(struct client *c)
{
	if (c->state == CLIENT_CLOSED)
		return -1;
	if (!c->send_queued) {
		c->send_queued = true;
		c->send_next = c->b->send_queue;
		c->b->send_queue = c;
	}
	return 0;
}

/* Sending may let a session deliver more, or a client whose output piled up
 * read again: what that gives goes in the next pass, at most this many. */
#define SEND_PASSES 8

void clients_send_queued(struct broker *b)
{
	for (int pass = 0; pass < SEND_PASSES && b->send_queue; pass++) {
		struct client *list = b->send_queue;
		b->send_queue = NULL;
		while (list) {
			struct client *c = list;
			list = c->send_next;
			c->send_queued = false;
			size_t was = client_unsent(c);
			if (c->state == CLIENT_CLOSED || client_send_flush(c) < 0)
				continue;
			if (c->session && was >= CLIENT_WBUF_HIGH &&
			    client_unsent(c) < CLIENT_WBUF_HIGH)
				session_pump(c->session);
			client_resume(c);
		}
	}
	/* Past the passes, the socket's EPOLLOUT sends the rest. */
	while (b->send_queue) {
		struct client *c = b->send_queue;
		b->send_queue = c->send_next;
		c->send_queued = false;
		client_update_events(c);
	}
}

int client_send_flush(struct client *c)
{
	while (c->state != CLIENT_CLOSED && c->woff < c->wbuf.len) {
		const char *p = c->wbuf.buf + c->woff;
		size_t len = c->wbuf.len - c->woff;
		ssize_t n;
		if (c->tls) {
			if (!c->tls_ready)
				break;
			n = tls_write(c->tls, p, len, &c->tls_want_write);
			if (n == -2)
				break;
		} else {
			n = send(c->io.fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
		}
		if (n <= 0) {
			client_close(c, LOG_LVL_INFO, true, "write failed: %s",
				     n < 0 && !c->tls ? strerror(errno) : "connection lost");
			return -1;
		}
		c->woff += (size_t)n;
	}
	if (c->state == CLIENT_CLOSED)
		return -1;
	if (c->woff == c->wbuf.len) {
		c->woff = 0;
		c->wbuf.len = 0;
		if (c->wbuf.cap > WBUF_KEEP)
			strbuf_release(&c->wbuf);
		else if (c->wbuf.buf)
			c->wbuf.buf[0] = '\0';
		if (c->close_after_flush) {
			client_close(c, LOG_LVL_DEBUG, false, "refused at CONNECT");
			return -1;
		}
	} else if (c->woff > WBUF_COMPACT) {
		memmove(c->wbuf.buf, c->wbuf.buf + c->woff, c->wbuf.len - c->woff);
		c->wbuf.len -= c->woff;
		c->wbuf.buf[c->wbuf.len] = '\0';
		c->woff = 0;
	}
	client_update_events(c);
	return 0;
}

static int dispatch(struct client *c, const struct mqtt_packet *pkt)
{
	uint8_t type = pkt->header.type;
	if (c->state == CLIENT_NEW && type != MQTT_CONNECT) {
		client_close(c, LOG_LVL_WARN, false, "first packet is %s, not CONNECT",
			     mqtt_type_name(type));
		return -1;
	}
	switch (type) {
	case MQTT_CONNECT: {
		if (c->state != CLIENT_NEW) {
			client_close(c, LOG_LVL_WARN, true, "second CONNECT on one connection");
			return -1;
		}
		int rc = handle_connect(c, &pkt->u.connect);
		preauth_account(c); /* accepted: its buffer no longer counts */
		return rc;
	}
	case MQTT_PUBLISH:
		return handle_publish(c, &pkt->u.publish);
	case MQTT_PUBACK:
		return handle_puback(c, pkt->u.packet_id);
	case MQTT_SUBSCRIBE:
		return handle_subscribe(c, &pkt->u.subscribe);
	case MQTT_UNSUBSCRIBE:
		return handle_unsubscribe(c, &pkt->u.subscribe);
	case MQTT_PINGREQ:
		return handle_pingreq(c);
	case MQTT_DISCONNECT:
		return handle_disconnect(c);
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		client_close(c, LOG_LVL_WARN, true, "%s: QoS 2 is not supported",
			     mqtt_type_name(type));
		return -1;
	default:
		client_close(c, LOG_LVL_WARN, true, "%s is not sent by clients",
			     mqtt_type_name(type));
		return -1;
	}
}

/* The next complete packet at off: 1 handled (*used bytes), 0 incomplete,
 * -1 the connection was closed (bad packet, or the handler closed it). */
static int handle_one(struct client *c, size_t off, size_t *used)
{
	size_t max = c->b->cfg->max_packet;
	struct mqtt_fixed_header h;
	struct berr err;
	int rc = mqtt_fixed_header_read(c->rbuf + off, c->rlen - off, &h, &err);
	if (rc < 0) {
		client_close(c, LOG_LVL_WARN, true, "malformed packet: %s", err.msg);
		return -1;
	}
	if (rc > 0)
		return 0;
	if (h.remaining > max) {
		client_close(c, LOG_LVL_WARN, true,
			     "%s packet of %u bytes is over the limit of %zu",
			     mqtt_type_name(h.type), h.remaining, max);
		return -1;
	}
	size_t total = (size_t)h.header_len + h.remaining;
	if (c->rlen - off < total)
		return 0;
	struct mqtt_packet pkt;
	if (mqtt_decode(c->rbuf + off, total, &pkt, &err) < 0) {
		client_close(c, LOG_LVL_WARN, true, "malformed packet: %s", err.msg);
		return -1;
	}
	*used = total;
	return dispatch(c, &pkt) < 0 ? -1 : 1;
}

/* Handles every complete packet in the input buffer, unless reading is
 * paused (too many PUBACKs waiting for the store, output piling up, or a
 * refused CONNECT whose CONNACK is still being written). */
static void process_input(struct client *c)
{
	size_t off = 0, used = 0;
	c->in_input = true;
	while (c->state != CLIENT_CLOSED && !reading_paused(c) && handle_one(c, off, &used) > 0)
		off += used;
	c->in_input = false;
	if (c->state == CLIENT_CLOSED)
		return;
	if (c->close_after_flush) {
		c->rlen = 0; /* nothing more is read from a refused client */
		return;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	if (c->rlen == 0) {
		/* Most clients are idle most of the time: hold no buffer then. */
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	} else if (c->rcap > RBUF_KEEP && c->rlen <= RBUF_KEEP / 2) {
		uint8_t *p = realloc(c->rbuf, RBUF_KEEP);
		if (p) {
			c->rbuf = p;
			c->rcap = RBUF_KEEP;
		}
	}
	preauth_account(c);
}

/* Room for one more read; the buffer never holds more than one packet of
 * max_packet plus one read's worth. -1 out of memory, -2 the connection has
 * not sent CONNECT and the budget for such input (HUB_PREAUTH_BUFFER_MAX)
 * is spent. */
static int rbuf_reserve(struct client *c)
{
	bool before_connect = c->state == CLIENT_NEW;
	size_t chunk = before_connect ? preauth_base(c) : READ_CHUNK;
	if (c->rcap - c->rlen >= chunk)
		return 0;
	size_t limit = c->b->cfg->max_packet + MQTT_FIXED_HEADER_MAX + chunk;
	size_t cap = c->rcap ? c->rcap * 2 : chunk;
	if (cap < c->rlen + chunk)
		cap = c->rlen + chunk;
	if (cap > limit)
		cap = limit;
	if (cap <= c->rcap)
		return c->rcap > c->rlen ? 0 : -1;
	if (before_connect && cap > chunk &&
	    c->b->preauth_bytes - c->preauth_counted + (cap - chunk) > HUB_PREAUTH_BUFFER_MAX)
		return -2;
	uint8_t *p = realloc(c->rbuf, cap);
	if (!p)
		return -1;
	c->rbuf = p;
	c->rcap = cap;
	preauth_account(c);
	return 0;
}

static void client_read(struct client *c)
{
	for (int i = 0; i < READS_PER_EVENT && c->state != CLIENT_CLOSED && !reading_paused(c);
	     i++) {
		int rc = rbuf_reserve(c);
		if (rc == -2) {
			client_close(
			    c, LOG_LVL_WARN, false,
			    "%zu bytes before CONNECT: connections not yet accepted already "
			    "hold the %d KiB the hub gives them",
			    c->rlen, HUB_PREAUTH_BUFFER_MAX / 1024);
			return;
		}
		if (rc < 0) {
			client_close(c, LOG_LVL_ERROR, true, "out of memory for the input buffer");
			return;
		}
		ssize_t n;
		size_t room = c->rcap - c->rlen;
		if (c->tls) {
			n = tls_read(c->tls, c->rbuf + c->rlen, room, &c->tls_want_write);
			if (n == -2)
				return;
		} else {
			n = recv(c->io.fd, c->rbuf + c->rlen, room, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
		}
		if (n == 0) {
			client_close(c, LOG_LVL_INFO, true,
				     "connection closed by the client without DISCONNECT");
			return;
		}
		if (n < 0) {
			client_close(c, LOG_LVL_INFO, true, "read failed: %s",
				     c->tls ? "TLS error" : strerror(errno));
			return;
		}
		c->rlen += (size_t)n;
		c->last_rx_mono = c->b->mono_ms;
		process_input(c);
	}
}

/* Called when PUBACKs went out or output drained: reads may go on. */
void client_resume(struct client *c)
{
	if (c->state == CLIENT_CLOSED || reading_paused(c))
		return;
	if (c->rlen && !c->in_input)
		process_input(c);
	client_update_events(c);
}

static void on_client_event(struct hub_io *io, uint32_t events)
{
	struct client *c = (struct client *)io;
	if (c->state == CLIENT_CLOSED)
		return;
	if (c->tls && !c->tls_ready) {
		struct berr err;
		int rc = tls_handshake(c->tls, &c->tls_want_write, &err);
		if (rc < 0) {
			client_close(c, LOG_LVL_WARN, false, "%s", err.msg);
			return;
		}
		if (rc > 0) {
			client_update_events(c);
			return;
		}
		c->tls_ready = true;
		c->tls_want_write = false;
	}
	/* TLS may need to read when the socket turns writable, and the reverse. */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) || c->tls)
		client_read(c);
	if (c->state != CLIENT_CLOSED && (events & EPOLLOUT || (c->tls && client_unsent(c)))) {
		if (client_send_flush(c) < 0)
			return;
		if (c->session && client_unsent(c) < CLIENT_WBUF_HIGH)
			session_pump(c->session);
		client_resume(c);
	}
	client_update_events(c);
}
