/* The upstream's host name, looked up off the event loop: getaddrinfo()
 * waits for DNS servers (seconds when one does not answer), and the hub
 * must keep routing local messages meanwhile. A detached thread does one
 * lookup and writes its answer, one small record, into a pipe the loop
 * watches; it owns nothing the hub frees, so a lookup the hub no longer
 * wants simply finds the pipe closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/upstream_conn.h"

#define RESOLVER_STACK (256 * 1024)

struct answer {
	char addr[UPSTREAM_ADDR_MAX]; /* "" on failure */
	char error[128];
};

struct lookup {
	char host[URL_HOST_MAX + 1];
	int fd; /* write end */
};

struct upstream_resolver {
	struct hub_io io; /* read end */
	struct upstream *up;
};

static void *lookup_run(void *arg)
{
	struct lookup *l = arg;
	struct answer a;
	memset(&a, 0, sizeof(a));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res;
	int rc = getaddrinfo(l->host, NULL, &hints, &res);
	if (rc) {
		snprintf(a.error, sizeof(a.error), "%s", gai_strerror(rc));
	} else {
		/* IPv4 first: devices more often have a v4 route than a v6 one. */
		struct addrinfo *pick = res;
		for (struct addrinfo *r = res; r; r = r->ai_next)
			if (r->ai_family == AF_INET) {
				pick = r;
				break;
			}
		const void *where =
		    pick->ai_family == AF_INET
			? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
			: (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
		if (!inet_ntop(pick->ai_family, where, a.addr, sizeof(a.addr)))
			snprintf(a.error, sizeof(a.error), "no usable address");
		freeaddrinfo(res);
	}
	/* One write below PIPE_BUF: whole or not at all. */
	ssize_t w = write(l->fd, &a, sizeof(a));
	(void)w;
	close(l->fd);
	free(l);
	return NULL;
}

static void on_answer(struct hub_io *io, uint32_t events)
{
	struct upstream_resolver *r = (struct upstream_resolver *)io;
	struct upstream *up = r->up;
	struct answer a;
	if (!up)
		return; /* cancelled earlier in this loop turn */
	ssize_t n = read(io->fd, &a, sizeof(a));
	if (n < 0 && errno == EAGAIN)
		return;
	upstream_resolve_cancel(up);
	if (n == (ssize_t)sizeof(a) && a.addr[0]) {
		a.addr[sizeof(a.addr) - 1] = '\0';
		upstream_resolved(up, a.addr, NULL);
	} else {
		a.error[sizeof(a.error) - 1] = '\0';
		upstream_resolved(up, NULL, n == (ssize_t)sizeof(a) ? a.error : "lookup failed");
	}
}

int upstream_resolve_start(struct upstream *up, struct berr *err)
{
	if (up->resolver)
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return berr_set(err, errno, "resolving %s: pipe", up->url.host);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	struct upstream_resolver *r = calloc(1, sizeof(*r));
	struct lookup *l = calloc(1, sizeof(*l));
	pthread_attr_t attr;
	pthread_t t;
	int rc = ENOMEM;
	if (r && l) {
		snprintf(l->host, sizeof(l->host), "%s", up->url.host);
		l->fd = fds[1];
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, RESOLVER_STACK);
		rc = pthread_create(&t, &attr, lookup_run, l);
		pthread_attr_destroy(&attr);
	}
	if (rc) {
		close(fds[0]);
		close(fds[1]);
		free(r);
		free(l);
		return berr_set(err, rc, "resolving %s", up->url.host);
	}
	r->up = up;
	r->io.fd = fds[0];
	r->io.on_event = on_answer;
	if (broker_watch(up->b, &r->io, EPOLLIN, err) < 0) {
		close(fds[0]);
		free(r);
		return -1;
	}
	up->resolver = r;
	return 0;
}

void upstream_resolve_cancel(struct upstream *up)
{
	struct upstream_resolver *r = up->resolver;
	if (!r)
		return;
	broker_unwatch(up->b, &r->io);
	close(r->io.fd);
	r->io.fd = -1;
	r->up = NULL;
	upstream_bury(r, free);
	up->resolver = NULL;
}
