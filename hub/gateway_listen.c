/* The TLS gateway's listeners: MQTT (8883) and HTTPS (443) on each address
 * the config lists (the daemon lists the loopback address for host-network
 * modules and each bridge network's own address). The certificate is the
 * gateway's, with its chain; TLS 1.2 and 1.3. libssl is loaded when the
 * first connection arrives, so a hub no module reaches over TLS never maps
 * it. An address that cannot be bound yet (a bridge not made, a port in
 * use) is tried again every few seconds; a reload opens new addresses,
 * closes those no longer listed and takes a new certificate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/broker.h"

#define BIND_RETRY_MS	  5000
#define ACCEPTS_PER_EVENT 32

struct gateway_listener {
	struct hub_io io;
	struct broker *b;
	struct gateway_listener *next;
	char addr[72];
	bool https;
	bool listed;	    /* in the current config */
	int64_t retry_mono; /* not bound: when to try again */
	int last_error;	    /* the errno of the last failed bind, said once */
};

void *gateway_tls(struct broker *b, struct berr *err)
{
	if (b->gateway_tls_ctx)
		return b->gateway_tls_ctx;
	if (!b->cfg->gateway_cert)
		return berr_set(err, 0, "no gateway certificate configured"), NULL;
	if (tls_server_init(b->cfg->gateway_cert, b->cfg->gateway_key, &b->gateway_tls_ctx, err) <
	    0) {
		berr_wrap(err, "gateway TLS");
		return NULL;
	}
	return b->gateway_tls_ctx;
}

static void on_accept(struct hub_io *io, uint32_t events)
{
	struct gateway_listener *l = (struct gateway_listener *)io;
	struct broker *b = l->b;
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		char host[64], peer[96];
		int fd = listener_accept_tcp(b, io, l->addr, host, sizeof(host));
		if (fd < 0)
			return;
		snprintf(peer, sizeof(peer), "gateway %s", host);
		struct berr err;
		void *ctx = gateway_tls(b, &err);
		void *tls = ctx ? tls_session_new(ctx, fd, &err) : NULL;
		if (!tls) {
			log_warn("%s: %s", peer, err.msg);
			close(fd);
			continue;
		}
		if (l->https) {
			gateway_http_accept(b, fd, tls, host);
			continue;
		}
		if (!listener_room_for(b, fd, peer)) {
			tls_session_free(tls);
			continue;
		}
		listener_add_tcp_client(b, fd, peer, tls);
	}
}

/* Binds the listener; an address that is not there yet (a bridge to come)
 * is bound all the same (IP_FREEBIND). */
static int bind_listener(struct gateway_listener *l, struct berr *err)
{
	int fd = listener_tcp_socket(l->addr, true, err);
	if (fd < 0)
		return -1;
	l->io.fd = fd;
	if (broker_watch(l->b, &l->io, l->b->accept_paused ? 0 : EPOLLIN, err) < 0) {
		close(fd);
		l->io.fd = -1;
		return -1;
	}
	return 0;
}

static void try_bind(struct gateway_listener *l)
{
	struct berr err;
	if (bind_listener(l, &err) == 0) {
		log_info("gateway: %s with TLS on %s", l->https ? "HTTPS" : "MQTT", l->addr);
		l->last_error = 0;
		return;
	}
	if (err.code != l->last_error)
		log_warn("gateway: %s (trying again every %d s)", err.msg, BIND_RETRY_MS / 1000);
	l->last_error = err.code ? err.code : -1;
	l->retry_mono = l->b->mono_ms + BIND_RETRY_MS;
}

static void close_listener(struct gateway_listener *l)
{
	if (l->io.fd >= 0) {
		broker_unwatch(l->b, &l->io);
		close(l->io.fd);
		l->io.fd = -1;
	}
}

static void want(struct broker *b, const char *addr, bool https)
{
	for (struct gateway_listener *l = b->gateway_listeners; l; l = l->next)
		if (l->https == https && !strcmp(l->addr, addr)) {
			l->listed = true;
			return;
		}
	struct gateway_listener *l = calloc(1, sizeof(*l));
	if (!l) {
		log_error("gateway: out of memory for the listener on %s", addr);
		return;
	}
	l->io.fd = -1;
	l->io.on_event = on_accept;
	l->b = b;
	l->https = https;
	l->listed = true;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->next = b->gateway_listeners;
	b->gateway_listeners = l;
	try_bind(l);
}

void gateway_listen_sync(struct broker *b)
{
	for (struct gateway_listener *l = b->gateway_listeners; l; l = l->next)
		l->listed = false;
	for (size_t i = 0; i < b->cfg->n_gateway_mqtt; i++)
		want(b, b->cfg->gateway_mqtt[i], false);
	for (size_t i = 0; i < b->cfg->n_gateway_https; i++)
		want(b, b->cfg->gateway_https[i], true);
	struct gateway_listener **lp = &b->gateway_listeners;
	while (*lp) {
		struct gateway_listener *l = *lp;
		if (l->listed) {
			lp = &l->next;
			continue;
		}
		log_info("gateway: no longer listening on %s", l->addr);
		close_listener(l);
		*lp = l->next;
		free(l);
	}
	/* The certificate may be new: the next connection loads it. Sessions
	 * under way keep the context they began with. */
	tls_server_free(b->gateway_tls_ctx);
	b->gateway_tls_ctx = NULL;
}

void gateway_listen_tick(struct broker *b)
{
	for (struct gateway_listener *l = b->gateway_listeners; l; l = l->next)
		if (l->io.fd < 0 && b->mono_ms >= l->retry_mono)
			try_bind(l);
}

void gateway_listen_pause(struct broker *b, bool pause)
{
	for (struct gateway_listener *l = b->gateway_listeners; l; l = l->next) {
		struct epoll_event ev = {.events = pause ? 0 : EPOLLIN, .data.ptr = &l->io};
		if (l->io.fd >= 0)
			epoll_ctl(b->epfd, EPOLL_CTL_MOD, l->io.fd, &ev);
	}
}

void gateway_listen_close(struct broker *b)
{
	while (b->gateway_listeners) {
		struct gateway_listener *l = b->gateway_listeners;
		b->gateway_listeners = l->next;
		close_listener(l);
		free(l);
	}
	tls_server_free(b->gateway_tls_ctx);
	b->gateway_tls_ctx = NULL;
}
