/* The workload socket in the daemon's loop: accepts, reads one request per
 * connection (bounded), checks that the caller is the module it asks for,
 * answers, closes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/conn.h"
#include "agent/daemon.h"
#include "agent/workload.h"
#include "common/cgroup_proc.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sas.h"
#include "common/sock.h"
#include "common/strbuf.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define WORKLOAD_CLIENTS_MAX 16
#define WORKLOAD_REQUEST_MS  5000 /* a connection gets this long to send its request */
#define WORKLOAD_SEND_MS     2000 /* and this long to take the answer */

static void respond_error(int fd, int status, const char *msg);

static struct conn slots[WORKLOAD_CLIENTS_MAX];
static struct conn_table wclients = {slots,
				     WORKLOAD_CLIENTS_MAX,
				     TAG_WCLIENT,
				     WORKLOAD_HEADER_MAX + WORKLOAD_BODY_MAX,
				     WORKLOAD_REQUEST_MS,
				     413,
				     respond_error};

int workload_listen(struct daemon *d, struct berr *err)
{
	conn_table_init(&wclients);
	char path[4300];
	snprintf(path, sizeof(path), "%s/" SHARED_DIR "/" WORKLOAD_SOCKET, d->run);
	/* Any module user may connect; the caller's cgroup decides what it gets. */
	int fd = unix_listen(path, 0666, 16, SOCK_NONBLOCK, "workload socket", err);
	if (fd < 0)
		return -1;
	d->workload_fd = fd;
	daemon_watch_fd(d, fd, TAG_WORKLOAD);
	return 0;
}

static void respond(int fd, int status, const char *json)
{
	const char *reason = status == 200   ? "OK"
			     : status == 400 ? "Bad Request"
			     : status == 403 ? "Forbidden"
			     : status == 404 ? "Not Found"
			     : status == 405 ? "Method Not Allowed"
			     : status == 408 ? "Request Timeout"
			     : status == 411 ? "Length Required"
			     : status == 413 ? "Payload Too Large"
			     : status == 431 ? "Request Header Fields Too Large"
					     : "Internal Server Error";
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, reason, strlen(json));
	if (send_bounded(fd, head, (size_t)n, WORKLOAD_SEND_MS) == 0)
		send_bounded(fd, json, strlen(json), WORKLOAD_SEND_MS);
}

static void respond_error(int fd, int status, const char *msg)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "message", msg);
	yajl_gen_map_close(g);
	char *text = json_gen_finish(g, NULL);
	yajl_gen_free(g);
	if (text)
		respond(fd, status, text);
	free(text);
}

/* Which module is calling: its instance cgroup, read through a pidfd when
 * the kernel gives one (the very process that connected). */
static int identify(int fd, struct conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return -1;
	int pidfd = -1;
	socklen_t plen = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &plen) < 0)
		pidfd = -1;
	struct berr err;
	int rc = pidfd >= 0 ? cgroup_instance_of_pidfd(pidfd, c->module, sizeof(c->module), &err)
			    : cgroup_instance_of_pid(cred.pid, c->module, sizeof(c->module), &err);
	if (pidfd >= 0)
		close(pidfd);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		c->module[0] = '\0';
		c->host_root = cred.uid == 0;
	}
	return 0;
}

void workload_accept(struct daemon *d)
{
	for (;;) {
		int fd = accept4(d->workload_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct conn *c = conn_add(d, &wclients, fd);
		if (!c) {
			respond_error(fd, 500, "too many connections; try again");
			close(fd);
		} else if (identify(fd, c) < 0) {
			respond_error(fd, 403, "cannot tell which module is calling");
			conn_close(d, c);
		}
	}
}

static void serve(struct daemon *d, struct conn *c, const struct workload_request *req)
{
	char msg[256];
	if (strcmp(c->module, req->module) && !(c->host_root && !c->module[0])) {
		snprintf(msg, sizeof(msg), "module %s may not sign for module %s",
			 c->module[0] ? c->module : "(host)", req->module);
		log_warn("workload: %s", msg);
		respond_error(c->fd, 403, msg);
		return;
	}
	struct module_rt *m = module_find(d, req->module);
	if (!m || !d->dep || !deployment_module(d->dep, req->module)) {
		snprintf(msg, sizeof(msg), "module %s is not in the deployment", req->module);
		respond_error(c->fd, 404, msg);
		return;
	}
	if (strcmp(m->generation_id, req->genid)) {
		snprintf(msg, sizeof(msg), "module %s has another generation id", req->module);
		respond_error(c->fd, 404, msg);
		return;
	}
	char key[SAS_KEY_B64_MAX], digest[128];
	struct berr err;
	int status = 500;
	if (sas_derive_module_key(d->cfg->device_key, m->name, m->generation_id, key, &err) < 0 ||
	    workload_sign(req->body, req->body_len, key, digest, sizeof(digest), &status, &err) <
		0) {
		explicit_bzero(key, sizeof(key));
		respond_error(c->fd, status, err.msg);
		return;
	}
	explicit_bzero(key, sizeof(key));
	char body[256];
	snprintf(body, sizeof(body), "{\"digest\":\"%s\"}", digest);
	respond(c->fd, 200, body);
}

void workload_client_ready(struct daemon *d, int fd)
{
	struct conn *c = conn_find(&wclients, fd);
	while (c && conn_read(d, &wclients, c) > 0) {
		struct workload_request req;
		int status;
		struct berr err;
		int rc = workload_parse_request(c->in.buf, c->in.len, &req, &status, &err);
		if (rc == 0)
			continue;
		if (rc < 0)
			respond_error(fd, status, err.msg);
		else
			serve(d, c, &req);
		conn_close(d, c);
		return;
	}
}

/* Connections that did not send a request in time are closed, so modules
 * holding connections open cannot use up the slots of the others. */
int64_t workload_sweep(struct daemon *d, int64_t now)
{
	return d->workload_fd >= 0 ? conn_sweep(d, &wclients, now) : INT64_MAX;
}
