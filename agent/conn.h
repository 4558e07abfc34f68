/* Private to agent/: the connections of the daemon's request sockets (the
 * CLI's and the workload API's). Each socket has a fixed table of slots, so
 * a flood of connections cannot grow the daemon; a connection sends one
 * request into a bounded buffer and must do so before its deadline. */
#ifndef BERTH_AGENT_CONN_H
#define BERTH_AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/names.h"
#include "common/strbuf.h"

struct daemon;

struct conn {
	int fd; /* -1: the slot is free */
	struct strbuf in;
	int64_t deadline_boot;
	/* The workload API's caller: its instance ("" for the host), and
	 * whether a caller on the host is root. */
	char module[INSTANCE_NAME_MAX + 1];
	bool host_root;
	char owner[INSTANCE_NAME_MAX + 1]; /* the module whose socket it came to */
	/* Refused when it connected: answered once its request is read (a
	 * socket closed with unread input would reset the answer away). */
	int refused;
	char why[96];
};

struct conn_table {
	struct conn *slots;
	size_t n;
	uint32_t tag;	    /* the daemon's watch tag for these connections */
	size_t request_max; /* bytes */
	int request_ms;	    /* the time a connection has for its request */
	int too_large;	    /* the status answering a request over request_max */
	/* Answers an error (before the connection is closed). */
	void (*reply)(int fd, int status, const char *error);
};

void conn_table_init(struct conn_table *t);
/* A slot for fd, watched by the daemon; NULL when all are taken. */
struct conn *conn_add(struct daemon *d, struct conn_table *t, int fd);
struct conn *conn_find(struct conn_table *t, int fd);
/* Reads what the peer sent: 1 when c->in got more, 0 when there is
 * nothing more for now, -1 when the connection is gone (the peer closed,
 * or the request grew too large and got its answer). */
int conn_read(struct daemon *d, struct conn_table *t, struct conn *c);
/* Frees the slot; conn_close() also closes the connection. */
void conn_release(struct daemon *d, struct conn *c);
void conn_close(struct daemon *d, struct conn *c);
/* Answers every connection past its deadline (408) and closes it; returns
 * the next deadline (boot clock). */
int64_t conn_sweep(struct daemon *d, struct conn_table *t, int64_t now);

#endif
