#include "agent/conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/daemon.h"

void conn_table_init(struct conn_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		t->slots[i].fd = -1;
}

struct conn *conn_find(struct conn_table *t, int fd)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->slots[i].fd == fd)
			return &t->slots[i];
	return NULL;
}

struct conn *conn_add(struct daemon *d, struct conn_table *t, int fd)
{
	struct conn *c = conn_find(t, -1);
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->in = (struct strbuf)STRBUF_INIT;
	c->in.max = t->request_max;
	c->deadline_boot = boot_ms() + t->request_ms;
	daemon_watch_fd(d, fd, t->tag);
	return c;
}

int conn_read(struct daemon *d, struct conn_table *t, struct conn *c)
{
	char buf[16384];
	ssize_t n;
	do
		n = recv(c->fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n > 0 && strbuf_append(&c->in, buf, (size_t)n) == 0)
		return 1;
	if (n > 0)
		t->reply(c->fd, t->too_large, "request too large");
	conn_close(d, c);
	return -1;
}

void conn_release(struct daemon *d, struct conn *c)
{
	daemon_unwatch_fd(d, c->fd);
	c->fd = -1;
	strbuf_release(&c->in);
}

void conn_close(struct daemon *d, struct conn *c)
{
	int fd = c->fd;
	conn_release(d, c);
	close(fd);
}

int64_t conn_sweep(struct daemon *d, struct conn_table *t, int64_t now)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < t->n; i++) {
		struct conn *c = &t->slots[i];
		if (c->fd < 0)
			continue;
		if (now >= c->deadline_boot) {
			if (c->refused)
				t->reply(c->fd, c->refused, c->why);
			else
				t->reply(c->fd, 408, "no complete request in time");
			conn_close(d, c);
		} else if (c->deadline_boot < next)
			next = c->deadline_boot;
	}
	return next;
}
