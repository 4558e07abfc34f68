/* Listening sockets: the Unix socket every instance sees (handed over by the
 * daemon or created here, mode 0666 because modules run as any uid: access
 * is by token and peer cgroup) and the optional TCP listener (TLS when a
 * certificate is configured). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/sock.h"
#include "hub/broker.h"

#define ACCEPTS_PER_EVENT 32

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/* At the connection limit a new connection is closed at once; the line
 * saying so is written at most once a second, with how many were refused. */
bool listener_room_for(struct broker *b, int fd, const char *peer)
{
	if (b->n_clients < HUB_MAX_CONNECTIONS)
		return true;
	close(fd);
	b->refused_full++;
	if (b->mono_ms >= b->next_full_log_mono) {
		log_warn("refusing a connection from %s: %d connections already open (%zu refused "
			 "since the last such line)",
			 peer, HUB_MAX_CONNECTIONS, b->refused_full);
		b->refused_full = 0;
		b->next_full_log_mono = b->mono_ms + 1000;
	}
	return false;
}

/* accept() failed. Without descriptors (or memory) the connection stays in
 * the backlog and the listener stays readable: stop watching the listeners
 * until the next tick rather than spin on them. */
void listener_accept_failed(struct broker *b, const char *where)
{
	int e = errno;
	if (e == EAGAIN || e == EINTR || e == ECONNABORTED)
		return;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warn("accept on %s: %s", where, strerror(e));
		return;
	}
	if (b->accept_paused)
		return;
	log_warn("accept on %s: %s; not accepting connections for a moment (%zu open)", where,
		 strerror(e), b->n_clients);
	struct hub_io *listeners[] = {&b->unix_listener, &b->tcp_listener, &b->control_listener};
	for (size_t i = 0; i < ARRAY_SIZE(listeners); i++) {
		struct epoll_event ev = {.events = 0, .data.ptr = listeners[i]};
		if (listeners[i]->fd >= 0)
			epoll_ctl(b->epfd, EPOLL_CTL_MOD, listeners[i]->fd, &ev);
	}
	gateway_listen_pause(b, true);
	b->accept_paused = true;
}

void listener_resume(struct broker *b)
{
	if (!b->accept_paused)
		return;
	struct hub_io *listeners[] = {&b->unix_listener, &b->tcp_listener, &b->control_listener};
	for (size_t i = 0; i < ARRAY_SIZE(listeners); i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = listeners[i]};
		if (listeners[i]->fd >= 0)
			epoll_ctl(b->epfd, EPOLL_CTL_MOD, listeners[i]->fd, &ev);
	}
	gateway_listen_pause(b, false);
	b->accept_paused = false;
}

void listener_raise_fd_limit(void)
{
	/* A Unix client holds its socket and, until CONNECT, a pidfd. */
	rlim_t want = 2 * HUB_MAX_CONNECTIONS + 64;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_cur,
			  strerror(errno));
}

static void on_unix_accept(struct hub_io *io, uint32_t events)
{
	struct broker *b = (struct broker *)((char *)io - offsetof(struct broker, unix_listener));
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			listener_accept_failed(b, b->cfg->socket_path ? b->cfg->socket_path
								      : "hub socket");
			return;
		}
		struct ucred cred = {0};
		socklen_t clen = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.pid <= 0) {
			log_warn("refusing a Unix connection without peer credentials");
			close(fd);
			continue;
		}
		char peer[48];
		snprintf(peer, sizeof(peer), "pid %d", (int)cred.pid);
		if (!listener_room_for(b, fd, peer))
			continue;
		/* A pidfd names the very process that connected, even if its
		 * pid is reused later; older kernels fall back to the pid. */
		int pidfd = -1;
		socklen_t plen = sizeof(pidfd);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &plen) < 0)
			pidfd = -1;
		struct client *c = client_new(b, fd, false, peer);
		if (c) {
			c->pid = cred.pid;
			c->uid = cred.uid;
			c->pidfd = pidfd;
		} else if (pidfd >= 0) {
			close(pidfd);
		}
	}
}

void listener_peer_name(const struct sockaddr_storage *sa, char *out, size_t cap)
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

int listener_accept_tcp(struct broker *b, struct hub_io *io, const char *where, char *peer,
			size_t cap)
{
	struct sockaddr_storage sa;
	socklen_t slen = sizeof(sa);
	int fd = accept4(io->fd, (struct sockaddr *)&sa, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		listener_accept_failed(b, where);
	else
		listener_peer_name(&sa, peer, cap);
	return fd;
}

static void on_tcp_accept(struct hub_io *io, uint32_t events)
{
	struct broker *b = (struct broker *)((char *)io - offsetof(struct broker, tcp_listener));
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		char host[INET6_ADDRSTRLEN + 8], peer[INET6_ADDRSTRLEN + 16];
		int fd = listener_accept_tcp(b, io, b->cfg->listen_tcp, host, sizeof(host));
		if (fd < 0)
			return;
		snprintf(peer, sizeof(peer), "%s %s", b->tls_ctx ? "tls" : "tcp", host);
		if (!listener_room_for(b, fd, peer))
			continue;
		void *tls = NULL;
		if (b->tls_ctx) {
			struct berr err;
			tls = tls_session_new(b->tls_ctx, fd, &err);
			if (!tls) {
				log_warn("%s: %s", peer, err.msg);
				close(fd);
				continue;
			}
		}
		listener_add_tcp_client(b, fd, peer, tls);
	}
}

void listener_add_tcp_client(struct broker *b, int fd, const char *peer, void *tls)
{
	struct client *c = client_new(b, fd, true, peer);
	if (c)
		c->tls = tls;
	else
		tls_session_free(tls);
}

static int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int listener_open_unix(struct broker *b, int listen_fd, struct berr *err)
{
	const char *path = b->cfg->socket_path;
	int fd = listen_fd;
	if (fd >= 0) {
		int type = 0, listening = 0;
		socklen_t l1 = sizeof(type), l2 = sizeof(listening);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l2) < 0 ||
		    type != SOCK_STREAM || !listening)
			return berr_set(err, 0, "--listen-fd %d is not a listening stream socket",
					fd);
		if (set_nonblock_cloexec(fd) < 0)
			return berr_set(err, errno, "--listen-fd %d", fd);
	} else {
		if (!path)
			return berr_set(err, 0, "config.socket is required without --listen-fd");
		fd = unix_listen(path, 0666, 128, SOCK_NONBLOCK, "socket", err);
		if (fd < 0)
			return -1;
		b->own_socket = true;
	}
	b->unix_listener.fd = fd;
	b->unix_listener.on_event = on_unix_accept;
	return broker_watch(b, &b->unix_listener, EPOLLIN, err);
}

/* "host:port" or "[v6]:port". */
static int split_host_port(const char *s, char *host, size_t cap, const char **port)
{
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= cap)
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		*port = close + 2;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= cap)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = colon + 1;
	return **port ? 0 : -1;
}

int listener_tcp_socket(const char *addr, bool freebind, struct berr *err)
{
	char host[256];
	const char *port;
	if (split_host_port(addr, host, sizeof(host), &port) < 0)
		return berr_set(err, EINVAL, "\"%s\": expected host:port", addr);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai)
		return berr_set(err, EINVAL, "\"%s\": %s", addr, gai_strerror(gai));
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	bool v6 = res->ai_family == AF_INET6;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (freebind && setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
				    v6 ? IPV6_FREEBIND : IP_FREEBIND, &one, sizeof(one)) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return berr_set(err, e, "listen on %s", addr);
	}
	freeaddrinfo(res);
	return fd;
}

int listener_open_tcp(struct broker *b, struct berr *err)
{
	const char *addr = b->cfg->listen_tcp;
	if (!addr)
		return 0;
	int fd = listener_tcp_socket(addr, false, err);
	if (fd < 0)
		return berr_wrap(err, "config.listen_tcp");
	b->tcp_listener.fd = fd;
	b->tcp_listener.on_event = on_tcp_accept;
	if (b->cfg->tls_cert) {
		if (tls_server_init(b->cfg->tls_cert, b->cfg->tls_key, &b->tls_ctx, err) < 0)
			return berr_wrap(err, "TLS on %s", addr);
		log_info("listening on %s with TLS", addr);
	} else {
		log_info("listening on %s without TLS (no tls_cert configured)", addr);
	}
	return broker_watch(b, &b->tcp_listener, EPOLLIN, err);
}
