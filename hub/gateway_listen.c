/* The TLS gateway's listeners: MQTT (8883) and HTTPS (443) on each address
 * the config lists (the daemon lists the loopback address for host-network
 * modules and each bridge network's own address). The certificate is the
 * gateway's, with its chain; TLS 1.2 and 1.3. libssl is loaded when the
 * first connection arrives, so a hub no module reaches over TLS never maps
 * it. An address that cannot be bound yet (a bridge not made, a port in
 * use) is tried again every few seconds; a reload opens new addresses,
 * closes those no longer listed and takes a new certificate. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
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

static void peer_name(const struct sockaddr_storage *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, cap, "%s:%d", host, port);
}

static void on_accept(struct hub_io *io, uint32_t events)
{
	struct gateway_listener *l = (struct gateway_listener *)io;
	struct broker *b = l->b;
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage sa;
		socklen_t slen = sizeof(sa);
		int fd =
		    accept4(io->fd, (struct sockaddr *)&sa, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			listener_accept_failed(b, l->addr);
			return;
		}
		char host[64], peer[96];
		peer_name(&sa, host, sizeof(host));
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
		if (b->n_clients >= HUB_MAX_CONNECTIONS) {
			log_warn("refusing %s: %d connections already open", peer,
				 HUB_MAX_CONNECTIONS);
			tls_session_free(tls);
			close(fd);
			continue;
		}
		struct client *c = client_new(b, fd, true, peer);
		if (c)
			c->tls = tls;
		else
			tls_session_free(tls);
	}
}

static int split(const char *addr, char *host, size_t cap, const char **port)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= cap || !colon[1])
		return -1;
	size_t n = (size_t)(colon - addr);
	if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
		memcpy(host, addr + 1, n - 2);
		host[n - 2] = '\0';
	} else {
		memcpy(host, addr, n);
		host[n] = '\0';
	}
	*port = colon + 1;
	return 0;
}

/* Binds the listener; an address that is not there yet (a bridge to come)
 * is bound all the same with IP_FREEBIND. */
static int bind_listener(struct gateway_listener *l, struct berr *err)
{
	char host[64];
	const char *port;
	if (split(l->addr, host, sizeof(host), &port) < 0)
		return berr_set(err, EINVAL, "%s", l->addr);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai)
		return berr_set(err, EINVAL, "%s: %s", l->addr, gai_strerror(gai));
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	int level = res->ai_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int opt = res->ai_family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, level, opt, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return berr_set(err, e, "listen on %s", l->addr);
	}
	freeaddrinfo(res);
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
