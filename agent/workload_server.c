/* The workload API in the daemon's loop. Each module has a socket of its
 * own, <run>/modules/<name>/iotedge/workload.sock, whose directory is
 * mounted at /var/run/iotedge in that module's instance alone (as IoT Edge
 * mounts <home>/mnt/<module>.sock at /var/run/iotedge/workload.sock): the
 * socket a request arrives on names the caller. The peer's cgroup must
 * agree (or the peer be root on the host). One request per connection,
 * bounded, sent within 5 s; the answer closes it. */
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
#include "agent/edgeca.h"
#include "agent/workload.h"
#include "common/cgroup_proc.h"
#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/http.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sas.h"
#include "common/sock.h"
#include "common/strbuf.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define WORKLOAD_CLIENTS_MAX 64
#define WORKLOAD_PER_MODULE  8	  /* connections one module may hold at once */
#define WORKLOAD_REQUEST_MS  5000 /* a connection gets this long to send its request */
#define WORKLOAD_SEND_MS     2000 /* and this long to take the answer */
#define WORKLOAD_DIR	     "iotedge"

static void respond_error(int fd, int status, const char *msg);

static struct conn slots[WORKLOAD_CLIENTS_MAX];
static struct conn_table wclients = {slots,
				     WORKLOAD_CLIENTS_MAX,
				     TAG_WCLIENT,
				     WORKLOAD_HEADER_MAX + WORKLOAD_BODY_MAX,
				     WORKLOAD_REQUEST_MS,
				     413,
				     respond_error};
static bool initialized;

static void init_once(void)
{
	if (!initialized)
		conn_table_init(&wclients);
	initialized = true;
}

int workload_socket_dir(struct daemon *d, const char *name, char *out, size_t cap)
{
	char dir[4200];
	if (module_runtime_dir(d, name, dir, sizeof(dir)) < 0)
		return -1;
	int n = snprintf(out, cap, "%s/" WORKLOAD_DIR, dir);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int workload_module_open(struct daemon *d, struct module_rt *m, struct berr *err)
{
	init_once();
	if (m->workload_fd >= 0)
		return 0;
	char dir[4300], path[4400];
	if (workload_socket_dir(d, m->name, dir, sizeof(dir)) < 0)
		return berr_set(err, ENAMETOOLONG, "module %s: workload socket", m->name);
	snprintf(path, sizeof(path), "%s/" WORKLOAD_SOCKET, dir);
	if (fs_mkdir_p(dir, 0755, err) < 0)
		return berr_wrap(err, "module %s", m->name);
	/* Whatever user the module runs as may connect; only its instance
	 * sees the directory. */
	int fd = unix_listen(path, 0666, 16, SOCK_NONBLOCK, "workload socket", err);
	if (fd < 0)
		return berr_wrap(err, "module %s", m->name);
	m->workload_fd = fd;
	daemon_watch_fd(d, fd, TAG_WORKLOAD);
	return 0;
}

void workload_module_close(struct daemon *d, struct module_rt *m)
{
	if (m->workload_fd < 0)
		return;
	daemon_unwatch_fd(d, m->workload_fd);
	close(m->workload_fd);
	m->workload_fd = -1;
}

static void respond(int fd, int status, const char *json)
{
	struct strbuf out = STRBUF_INIT;
	if (http_response(&out, status, json, strlen(json)) == 0)
		send_bounded(fd, out.buf, out.len, WORKLOAD_SEND_MS);
	strbuf_release(&out);
}

static void respond_error(int fd, int status, const char *msg)
{
	cleanup_free char *text = http_error_json(msg);
	if (text)
		respond(fd, status, text);
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

void workload_accept(struct daemon *d, int listen_fd)
{
	init_once();
	struct module_rt *owner = NULL;
	for (size_t i = 0; i < d->n_mods && !owner; i++)
		if (d->mods[i]->workload_fd == listen_fd)
			owner = d->mods[i];
	if (!owner)
		return;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct conn *c = conn_add(d, &wclients, fd);
		if (!c) {
			respond_error(fd, 503, "too many connections; try again");
			close(fd);
			continue;
		}
		size_t mine = 0;
		for (size_t i = 0; i < WORKLOAD_CLIENTS_MAX; i++)
			mine += slots[i].fd >= 0 && !strcmp(slots[i].owner, owner->name);
		snprintf(c->owner, sizeof(c->owner), "%s", owner->name);
		if (mine >= WORKLOAD_PER_MODULE) {
			/* Closed at once, so the slots stay free for the others. */
			respond_error(fd, 503, "too many connections from this module; try again");
			conn_close(d, c);
		} else if (identify(fd, c) < 0) {
			c->refused = 403;
			snprintf(c->why, sizeof(c->why), "cannot tell which module is calling");
		} else if (strcmp(c->module, owner->name) && !(c->host_root && !c->module[0])) {
			/* Another instance reached this module's socket. */
			log_warn("workload: a process of %s called module %s's workload socket",
				 c->module[0] ? c->module : "the host (not root)", owner->name);
			c->refused = 403;
			snprintf(c->why, sizeof(c->why), "this socket serves another module");
		}
	}
}

/* {"certificate": pem} */
static void serve_trust_bundle(struct daemon *d, int fd, bool manifest)
{
	cleanup_free char *pem = NULL;
	struct berr err;
	if (edge_trust_bundle(d, manifest, &pem, &err) < 0) {
		log_error("workload: trust bundle: %s", err.msg);
		respond_error(fd, 500, err.msg);
		return;
	}
	yajl_gen g = json_gen_new(false);
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
		     json_gen_key_str(g, "certificate", pem) == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	cleanup_free char *out = json_gen_done_if(g, built, NULL);
	if (out)
		respond(fd, 200, out);
	else
		respond_error(fd, 500, "out of memory");
}

static void serve_sign(struct daemon *d, int fd, struct module_rt *m,
		       const struct workload_request *req)
{
	char key[SAS_KEY_B64_MAX], digest[128];
	struct berr err;
	int status = 500;
	if (sas_derive_module_key(d->cfg->device_key, m->name, m->generation_id, key, &err) < 0 ||
	    workload_sign(req->body, req->body_len, key, digest, sizeof(digest), &status, &err) <
		0) {
		explicit_bzero(key, sizeof(key));
		respond_error(fd, status, err.msg);
		return;
	}
	explicit_bzero(key, sizeof(key));
	char body[256];
	snprintf(body, sizeof(body), "{\"digest\":\"%s\"}", digest);
	respond(fd, 200, body);
}

/* 201 {"privateKey":{"type":"key","bytes":PEM},"certificate":PEM,"expiration":T}:
 * a server certificate whose SANs are the common name and the module's
 * name, as IoT Edge issues them. */
static void serve_server_cert(struct daemon *d, int fd, struct module_rt *m,
			      const struct workload_request *req)
{
	struct workload_cert_request cr;
	struct berr err;
	int status;
	int64_t now = wall_ms() / 1000;
	if (workload_cert_request_parse(req->body, req->body_len, now, &cr, &status, &err) < 0) {
		respond_error(fd, status, err.msg);
		return;
	}
	char cert[4300], key[4300];
	edge_ca_paths(d, cert, key, sizeof(cert));
	struct edgeca *ca = NULL;
	if (edgeca_load(cert, key, &ca, &err) < 0) {
		log_error("workload: edge CA: %s", err.msg);
		respond_error(fd, 500, err.msg);
		return;
	}
	const char *sans[] = {cr.common_name, m->name};
	int64_t want = cr.expiration ? cr.expiration : now + EDGECA_SERVER_LIFETIME_SECS;
	cleanup_free char *cert_pem = NULL, *key_pem = NULL;
	int64_t not_after = 0;
	int rc = edgeca_issue_server(ca, cr.common_name, sans, 2, now, want, &cert_pem, &key_pem,
				     &not_after, &err);
	edgeca_free(ca);
	if (rc < 0) {
		log_error("workload: module %s: %s", m->name, err.msg);
		respond_error(fd, 500, err.msg);
		return;
	}
	char exp[32];
	rfc3339_format(not_after, exp);
	yajl_gen g = json_gen_new(false);
	cleanup_free char *out = NULL;
	bool built =
	    g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_str(g, "privateKey") == 0 &&
	    yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_key_str(g, "type", "key") == 0 &&
	    json_gen_key_str(g, "bytes", key_pem) == 0 &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok &&
	    json_gen_key_str(g, "certificate", cert_pem) == 0 &&
	    json_gen_key_str(g, "expiration", exp) == 0 &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok;
	out = json_gen_done_if(g, built, NULL);
	explicit_bzero(key_pem, strlen(key_pem));
	if (!out) {
		respond_error(fd, 500, "out of memory");
		return;
	}
	log_info("workload: module %s: server certificate for %s until %s", m->name, cr.common_name,
		 exp);
	respond(fd, 201, out);
	explicit_bzero(out, strlen(out));
}

static void serve_crypt(struct daemon *d, int fd, struct module_rt *m,
			const struct workload_request *req)
{
	bool decrypt = req->op == WORKLOAD_DECRYPT;
	cleanup_free struct workload_crypt_request *cr = malloc(sizeof(*cr));
	cleanup_free unsigned char *out = malloc(sizeof(cr->data) + WORKLOAD_CRYPT_OVERHEAD);
	size_t b64_cap = base64_encoded_len(sizeof(cr->data) + WORKLOAD_CRYPT_OVERHEAD) + 1;
	cleanup_free char *b64 = malloc(b64_cap);
	struct berr err;
	int status = 500;
	if (!cr || !out || !b64) {
		respond_error(fd, 500, "out of memory");
		return;
	}
	if (workload_crypt_request_parse(req->body, req->body_len, decrypt, cr, &status, &err) <
	    0) {
		respond_error(fd, status, err.msg);
		return;
	}
	char dir[4200];
	unsigned char secret[WORKLOAD_SECRET_LEN];
	edge_dir(d, dir, sizeof(dir));
	if (workload_secret(dir, secret, &err) < 0) {
		log_error("workload: %s", err.msg);
		respond_error(fd, 500, err.msg);
		return;
	}
	size_t n = 0;
	size_t cap = sizeof(cr->data) + WORKLOAD_CRYPT_OVERHEAD;
	int rc = decrypt
		     ? workload_decrypt(secret, m->name, m->generation_id, cr, out, cap, &n, &err)
		     : workload_encrypt(secret, m->name, m->generation_id, cr, out, cap, &n, &err);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(cr, sizeof(*cr));
	if (rc < 0) {
		respond_error(fd, decrypt ? 400 : 500, err.msg);
		return;
	}
	int len = base64_encode(out, n, b64, b64_cap);
	explicit_bzero(out, n);
	struct strbuf body = STRBUF_INIT;
	if (len < 0 ||
	    strbuf_printf(&body, "{\"%s\":\"%s\"}", decrypt ? "plaintext" : "ciphertext", b64) < 0)
		respond_error(fd, 500, "out of memory");
	else
		respond(fd, 200, body.buf);
	if (body.buf)
		explicit_bzero(body.buf, body.len);
	strbuf_release(&body);
	explicit_bzero(b64, b64_cap);
}

static void serve(struct daemon *d, struct conn *c, const struct workload_request *req)
{
	if (req->op == WORKLOAD_TRUST_BUNDLE || req->op == WORKLOAD_MANIFEST_TRUST_BUNDLE) {
		serve_trust_bundle(d, c->fd, req->op == WORKLOAD_MANIFEST_TRUST_BUNDLE);
		return;
	}
	char msg[256];
	if (strcmp(c->owner, req->module)) {
		snprintf(msg, sizeof(msg), "module %s may not act for module %s", c->owner,
			 req->module);
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
	switch (req->op) {
	case WORKLOAD_SIGN:
		serve_sign(d, c->fd, m, req);
		break;
	case WORKLOAD_SERVER_CERT:
		serve_server_cert(d, c->fd, m, req);
		break;
	case WORKLOAD_ENCRYPT:
	case WORKLOAD_DECRYPT:
		serve_crypt(d, c->fd, m, req);
		break;
	default:
		respond_error(c->fd, 404, "not found");
	}
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
		if (c->refused)
			respond_error(fd, c->refused, c->why);
		else if (rc < 0)
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
	init_once();
	return conn_sweep(d, &wclients, now);
}
