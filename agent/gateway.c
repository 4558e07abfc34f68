/* The gateway modules connect to, as IoT Edge's edgeHub: the edge CA (the
 * operator's, or berth's quickstart CA in <root>/ca renewed at 80% of its
 * life), the gateway's server certificate for gateway_hostname, the trust
 * bundle modules get, the addresses where the hub listens for them and the
 * one the gateway name resolves to inside each instance.
 *
 * The certificates' validity is kept in <root>/ca/state.json with the
 * SHA-256 of the files it was read from: the daemon tells from it alone
 * whether anything is due, and what is due (making, reading, renewing) is
 * done by a `berth edgeca` child, so the daemon does not map libcrypto for
 * it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/edgeca.h"
#include "agent/network.h"
#include "agent/workload.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/strbuf.h"
#include "hub/hub.h"

#define CA_DIR		 "ca"
#define GATEWAY_CERT	 "gateway.pem"
#define GATEWAY_KEY	 "gateway.key"
#define STATE_FILE	 "state.json"
#define RETRY_AFTER_SECS 600 /* a renewal that failed is tried again */

void edge_dir(struct daemon *d, char *out, size_t cap)
{
	snprintf(out, cap, "%s/" CA_DIR, d->root);
}

void edge_ca_paths(struct daemon *d, char *cert, char *key, size_t cap)
{
	char dir[4200];
	edge_dir(d, dir, sizeof(dir));
	if (d->cfg->edge_ca_cert) {
		snprintf(cert, cap, "%s", d->cfg->edge_ca_cert);
		snprintf(key, cap, "%s", d->cfg->edge_ca_key);
	} else {
		snprintf(cert, cap, "%s/" EDGECA_CERT_FILE, dir);
		snprintf(key, cap, "%s/" EDGECA_KEY_FILE, dir);
	}
}

const char *gateway_hostname(struct daemon *d, char buf[HOSTNAME_MAX + 1])
{
	if (d->cfg->gateway_hostname)
		return d->cfg->gateway_hostname;
	if (gethostname(buf, HOSTNAME_MAX + 1) < 0 || !buf[0])
		snprintf(buf, HOSTNAME_MAX + 1, "localhost");
	buf[HOSTNAME_MAX] = '\0';
	return buf;
}

bool gateway_on(struct daemon *d)
{
	return d->cfg->hub_enabled && d->cfg->gateway_enabled;
}

size_t gateway_listen_addresses(struct daemon *d, char (*out)[GATEWAY_ADDR_MAX], size_t cap)
{
	/* Host-network modules reach the hub on the loopback address; a module
	 * on a bridge network on the bridge's address, which the hub binds
	 * before the bridge exists (IP_FREEBIND). */
	char bridges[HUB_GATEWAY_LISTEN_MAX][INET_ADDRSTRLEN];
	size_t nb = network_gateways(d, bridges, HUB_GATEWAY_LISTEN_MAX);
	size_t n = 0;
	if (n < cap)
		snprintf(out[n++], GATEWAY_ADDR_MAX, "%s", d->cfg->gateway_address);
	for (size_t i = 0; i < nb && n < cap; i++)
		snprintf(out[n++], GATEWAY_ADDR_MAX, "%s", bridges[i]);
	return n;
}

const char *gateway_instance_address(struct daemon *d, enum net_mode network)
{
	if (!gateway_on(d))
		return NULL;
	switch (network) {
	case NET_HOST:
		return d->cfg->gateway_address;
	case NET_NONE:
	case NET_JOIN:
		return NULL;
	}
	return NULL;
}

static void file_sha256(const char *path, char hex[65])
{
	hex[0] = '\0';
	char *data = NULL;
	size_t len = 0;
	struct berr err;
	if (fs_read_file(path, EDGECA_PEM_MAX, &data, &len, &err) < 0)
		return;
	struct sha256 s;
	unsigned char h[SHA256_LEN];
	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, h);
	free(data);
	for (size_t i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

/* state.json: each member and where it goes in struct edge_state. */
#define STR(k, f) JSON_FIELD_STR(struct edge_state, k, f)
#define NUM(k, f) JSON_FIELD_I64(struct edge_state, k, f)
static const struct json_field state_fields[] = {
    STR("ca_sha256", ca_sha256),
    NUM("ca_not_before", ca_not_before),
    NUM("ca_not_after", ca_not_after),
    STR("gateway_name", gw_name),
    STR("gateway_sha256", gw_sha256),
    STR("gateway_ca_sha256", gw_ca_sha256),
    NUM("gateway_not_before", gw_not_before),
    NUM("gateway_not_after", gw_not_after),
};
#undef STR
#undef NUM

/* What a missing or damaged state.json lacks counts as unknown: the
 * files are read again. */
static void state_load(struct daemon *d)
{
	cleanup_yajl yajl_val v = NULL;
	struct berr err;
	if (daemon_state_load(d, CA_DIR "/" STATE_FILE, 16384, &v, &err) < 0 || !v)
		return;
	/* A damaged member, and those after it, stay unknown. */
	if (json_get_fields(v, "state", false, state_fields, ARRAY_SIZE(state_fields), &d->edge,
			    &err) < 0)
		log_warn("edge CA state: %s", err.msg);
}

static void state_save(struct daemon *d)
{
	yajl_gen g = json_gen_new(true);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_fields(g, state_fields, ARRAY_SIZE(state_fields), &d->edge);
	yajl_gen_map_close(g);
	struct berr err;
	if (daemon_state_save(d, CA_DIR "/" STATE_FILE, g, "edge CA state", &err) < 0)
		log_warn("%s", err.msg);
}

/* Reads the CA certificate's validity into the state (libcrypto). */
static int read_ca(struct daemon *d, const char *cert, const char *sha, struct berr *err)
{
	struct edge_state *s = &d->edge;
	cleanup_free char *pem = NULL;
	size_t len = 0;
	if (fs_read_file(cert, EDGECA_PEM_MAX, &pem, &len, err) < 0 ||
	    edgeca_pem_validity(pem, len, &s->ca_not_before, &s->ca_not_after, err) < 0)
		return berr_wrap(err, "edge CA %s", cert);
	snprintf(s->ca_sha256, sizeof(s->ca_sha256), "%s", sha);
	state_save(d);
	return 0;
}

/* The CA is there and its validity known: made (quickstart, first start),
 * renewed (quickstart, 80% of its life passed) or read. *renewed is set
 * when a CA modules already trusted was replaced. */
static int ensure_ca(struct daemon *d, int64_t now, bool *renewed, struct berr *err)
{
	struct edge_state *s = &d->edge;
	char dir[4200], cert[4300], key[4300], sha[65];
	edge_dir(d, dir, sizeof(dir));
	edge_ca_paths(d, cert, key, sizeof(cert));
	bool quick = !d->cfg->edge_ca_cert;
	*renewed = false;
	file_sha256(cert, sha);
	if (quick && (!sha[0] || access(key, R_OK) < 0)) {
		log_info("edge CA: making berth's quickstart CA in %s (for production, configure "
			 "edge_ca with your own)",
			 dir);
		if (edgeca_create(dir, d->cfg->device_id, now, err) < 0)
			return berr_wrap(err, "edge CA");
		*renewed = sha[0] != '\0';
		file_sha256(cert, sha);
	} else if (!sha[0]) {
		return berr_set(err, 0, "edge CA: cannot read %s", cert);
	}
	if ((strcmp(sha, s->ca_sha256) || !s->ca_not_after) && read_ca(d, cert, sha, err) < 0)
		return -1;
	if (!edgeca_renewal_due(s->ca_not_before, s->ca_not_after, now))
		return 0;
	if (!quick)
		return 0; /* the operator's: never replaced (edge_tick warns) */
	log_info("edge CA: 80%% of the quickstart CA's life has passed; making a new one");
	if (edgeca_create(dir, d->cfg->device_id, now, err) < 0)
		return berr_wrap(err, "edge CA renewal");
	file_sha256(cert, sha);
	if (read_ca(d, cert, sha, err) < 0)
		return -1;
	*renewed = true;
	return 0;
}

/* The gateway's certificate for gateway_hostname, issued by the current CA
 * and not due for renewal. *changed when it was issued now. */
static int ensure_gateway_cert(struct daemon *d, int64_t now, bool *changed, struct berr *err)
{
	struct edge_state *s = &d->edge;
	char dir[4200], cpath[4300], kpath[4300], sha[65], host[HOSTNAME_MAX + 1];
	edge_dir(d, dir, sizeof(dir));
	snprintf(cpath, sizeof(cpath), "%s/" GATEWAY_CERT, dir);
	snprintf(kpath, sizeof(kpath), "%s/" GATEWAY_KEY, dir);
	const char *name = gateway_hostname(d, host);
	*changed = false;
	file_sha256(cpath, sha);
	if (sha[0] && access(kpath, R_OK) == 0 && !strcmp(sha, s->gw_sha256) &&
	    !strcmp(name, s->gw_name) && !strcmp(s->ca_sha256, s->gw_ca_sha256) &&
	    !edgeca_renewal_due(s->gw_not_before, s->gw_not_after, now))
		return 0;
	char ca_cert[4300], ca_key[4300];
	edge_ca_paths(d, ca_cert, ca_key, sizeof(ca_cert));
	struct edgeca *ca = NULL;
	if (edgeca_load(ca_cert, ca_key, &ca, err) < 0)
		return berr_wrap(err, "edge CA");
	char cn[EDGECA_CN_MAX + 1];
	snprintf(cn, sizeof(cn), "%s", name); /* a longer name is in the SAN alone */
	const char *sans[] = {name};
	cleanup_free char *cert_pem = NULL, *key_pem = NULL;
	int64_t not_after = 0;
	int rc = edgeca_issue_server(ca, cn, sans, 1, now, now + EDGECA_SERVER_LIFETIME_SECS,
				     &cert_pem, &key_pem, &not_after, err);
	edgeca_free(ca);
	if (rc < 0)
		return berr_wrap(err, "gateway certificate for %s", name);
	rc = fs_write_file_atomic(kpath, key_pem, strlen(key_pem), 0600, err);
	explicit_bzero(key_pem, strlen(key_pem));
	if (rc < 0 || fs_write_file_atomic(cpath, cert_pem, strlen(cert_pem), 0644, err) < 0)
		return -1;
	file_sha256(cpath, s->gw_sha256);
	snprintf(s->gw_name, sizeof(s->gw_name), "%s", name);
	snprintf(s->gw_ca_sha256, sizeof(s->gw_ca_sha256), "%s", s->ca_sha256);
	s->gw_not_before = now;
	s->gw_not_after = not_after;
	state_save(d);
	char until[32];
	rfc3339_format(not_after, until);
	log_info("gateway certificate for %s issued by the edge CA, valid until %s", name, until);
	*changed = true;
	return 0;
}

static void schedule(struct daemon *d, int64_t now, bool failed)
{
	struct edge_state *s = &d->edge;
	int64_t next = failed ? now + RETRY_AFTER_SECS : INT64_MAX / 2000;
	if (!failed && s->ca_not_after && !d->cfg->edge_ca_cert) {
		int64_t t = edgeca_renewal_time(s->ca_not_before, s->ca_not_after);
		if (t < next)
			next = t;
	}
	if (!failed && gateway_on(d) && s->gw_not_after) {
		int64_t t = edgeca_renewal_time(s->gw_not_before, s->gw_not_after);
		if (t < next)
			next = t;
	}
	if (next <= now)
		next = now + RETRY_AFTER_SECS;
	s->next_check_ms = next * 1000;
}

/* Modules hold the trust bundle they read at start: after a new CA, each
 * running one is restarted, as IoT Edge restarts every module when its
 * edge CA is renewed. */
static void restart_modules(struct daemon *d)
{
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		struct berr err;
		if (!m->shim_pid)
			continue;
		log_info("module %s: restarted for the new edge CA", m->name);
		if (module_restart(d, m->name, -1, &err) < 0)
			log_warn("module %s: %s", m->name, err.msg);
	}
}

int edge_check(struct daemon *d, int64_t now, bool *renewed, bool *changed, struct berr *err)
{
	char dir[4200];
	edge_dir(d, dir, sizeof(dir));
	*renewed = *changed = false;
	if (fs_mkdir_p(dir, 0700, err) < 0 || ensure_ca(d, now, renewed, err) < 0)
		return -1;
	return gateway_on(d) ? ensure_gateway_cert(d, now, changed, err) : 0;
}

/* Whether edge_check() has anything to do, told from state.json and the
 * files' hashes alone (no libcrypto). */
static bool work_due(struct daemon *d, int64_t now)
{
	const struct edge_state *s = &d->edge;
	char dir[4200], cert[4300], key[4300], sha[65], host[HOSTNAME_MAX + 1];
	edge_dir(d, dir, sizeof(dir));
	edge_ca_paths(d, cert, key, sizeof(cert));
	file_sha256(cert, sha);
	if (!sha[0] || strcmp(sha, s->ca_sha256) || !s->ca_not_after ||
	    (!d->cfg->edge_ca_cert && edgeca_renewal_due(s->ca_not_before, s->ca_not_after, now)))
		return true;
	if (!gateway_on(d))
		return false;
	char gw[4300];
	snprintf(gw, sizeof(gw), "%s/" GATEWAY_CERT, dir);
	file_sha256(gw, sha);
	snprintf(gw, sizeof(gw), "%s/" GATEWAY_KEY, dir);
	return !sha[0] || access(gw, R_OK) < 0 || strcmp(sha, s->gw_sha256) ||
	       strcmp(gateway_hostname(d, host), s->gw_name) ||
	       strcmp(s->ca_sha256, s->gw_ca_sha256) ||
	       edgeca_renewal_due(s->gw_not_before, s->gw_not_after, now);
}

/* Exit statuses of `berth edgeca` besides 0 (nothing new) and 1 (failed). */
#define EXIT_CHANGED 10 /* a new gateway certificate */
#define EXIT_RENEWED 11 /* a new CA (and certificate) */
#define CHILD_MS     60000

/* The work is done by a `berth edgeca` child, so the daemon itself never
 * maps libcrypto for it. */
static int run_child(struct daemon *d, bool *renewed, bool *changed, struct berr *err)
{
	const char *argv[] = {berth_self_exe(), "--root",   d->root,	    "--run", d->run,
			      "edgeca",		"--config", d->config_path, NULL};
	pid_t pid = daemon_spawn((char *const *)argv, -1, -1, -1, false);
	if (pid < 0)
		return berr_set(err, errno, "edge CA: starting berth edgeca");
	int st = 0;
	int64_t deadline = boot_ms() + CHILD_MS;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (boot_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return berr_set(err, 0, "edge CA: berth edgeca took more than %d s",
					CHILD_MS / 1000);
		}
		usleep(5000);
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	*renewed = code == EXIT_RENEWED;
	*changed = code == EXIT_CHANGED || code == EXIT_RENEWED;
	if (code == 0 || *changed)
		return 0;
	return berr_set(err, 0, "edge CA: berth edgeca failed (status %d; its message is above)",
			WIFEXITED(st) ? code : 128 + WTERMSIG(st));
}

static int edge_run(struct daemon *d, bool at_start, struct berr *err)
{
	int64_t now = wall_ms() / 1000;
	bool renewed = false, changed = false;
	int rc = 0;
	state_load(d);
	if (work_due(d, now)) {
		rc = run_child(d, &renewed, &changed, err);
		state_load(d);
	}
	const struct edge_state *s = &d->edge;
	if (rc == 0 && d->cfg->edge_ca_cert && s->ca_not_after &&
	    edgeca_renewal_due(s->ca_not_before, s->ca_not_after, now)) {
		char when[32];
		rfc3339_format(s->ca_not_after, when);
		log_warn("edge CA %s %s %s: replace it (berth renews only its quickstart CA)",
			 d->cfg->edge_ca_cert, now >= s->ca_not_after ? "expired on" : "expires on",
			 when);
	}
	schedule(d, now, rc < 0);
	if (renewed)
		restart_modules(d);
	if ((renewed || changed) && !at_start && d->hub.pid > 0) {
		struct berr e;
		if (hubproc_write_config(d, &e) < 0)
			log_warn("hub config: %s", e.msg);
	}
	return rc;
}

int edge_setup(struct daemon *d, struct berr *err)
{
	return edge_run(d, true, err);
}

void edge_tick(struct daemon *d)
{
	if (!d->edge.next_check_ms || wall_ms() < d->edge.next_check_ms)
		return;
	struct berr err;
	if (edge_run(d, false, &err) < 0)
		log_error("%s (trying again in %d minutes)", err.msg, RETRY_AFTER_SECS / 60);
}

static int cmd_edge_ca(struct berth_ctx *ctx, int argc, char **argv)
{
	const char *config;
	if (agent_config_option(argc, argv, &config) < 0)
		return berth_usage("edgeca");
	log_set_name("berth edgeca");
	struct daemon d = {.control_fd = -1, .epfd = -1};
	struct berr err;
	if (agent_config_load(config, &d.cfg, &err) < 0) {
		fprintf(stderr, "berth: edgeca: %s\n", err.msg);
		return 1;
	}
	snprintf(d.root, sizeof(d.root), "%s", d.cfg->root ? d.cfg->root : ctx->root);
	snprintf(d.run, sizeof(d.run), "%s", d.cfg->run ? d.cfg->run : ctx->run);
	state_load(&d);
	bool renewed, changed;
	int rc = edge_check(&d, wall_ms() / 1000, &renewed, &changed, &err);
	agent_config_free(d.cfg);
	if (rc < 0) {
		fprintf(stderr, "berth: edgeca: %s\n", err.msg);
		return 1;
	}
	return renewed ? EXIT_RENEWED : changed ? EXIT_CHANGED : 0;
}
BERTH_COMMAND(edgeca, "edgeca [--config FILE]",
	      "make or renew the edge CA and the gateway certificate (the daemon runs it)",
	      cmd_edge_ca);

int64_t edge_next_deadline(struct daemon *d)
{
	if (!d->edge.next_check_ms)
		return INT64_MAX;
	int64_t wall = wall_ms();
	return boot_ms() + (d->edge.next_check_ms > wall ? d->edge.next_check_ms - wall : 0);
}

/* Appends the PEM certificates of a file. */
static int append_file(const char *path, struct strbuf *out, struct berr *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (fs_read_file(path, EDGECA_PEM_MAX, &data, &len, err) < 0)
		return -1;
	if (len && strbuf_append(out, data, len) < 0)
		return berr_set(err, errno, "trust bundle");
	if (len && data[len - 1] != '\n' && strbuf_puts(out, "\n") < 0)
		return berr_set(err, errno, "trust bundle");
	return 0;
}

int edge_trust_bundle(struct daemon *d, bool manifest, char **pem, struct berr *err)
{
	struct strbuf out = STRBUF_INIT;
	out.max = 4 * EDGECA_PEM_MAX;
	char cert[4300], key[4300];
	edge_ca_paths(d, cert, key, sizeof(cert));
	int rc = 0;
	if (manifest) {
		if (d->cfg->manifest_trust_bundle)
			rc = append_file(d->cfg->manifest_trust_bundle, &out, err);
	} else {
		rc = append_file(cert, &out, err);
		if (rc == 0 && d->cfg->trust_bundle)
			rc = append_file(d->cfg->trust_bundle, &out, err);
	}
	if (rc < 0) {
		strbuf_release(&out);
		return -1;
	}
	*pem = strbuf_detach(&out);
	return *pem ? 0 : berr_set(err, ENOMEM, "trust bundle");
}

void gateway_hub_config(struct daemon *d, yajl_gen g)
{
	if (!gateway_on(d) || !d->edge.gw_not_after)
		return;
	char dir[4200], path[4300];
	edge_dir(d, dir, sizeof(dir));
	json_gen_str(g, "gateway");
	yajl_gen_map_open(g);
	snprintf(path, sizeof(path), "%s/" GATEWAY_CERT, dir);
	json_gen_key_str(g, "cert", path);
	snprintf(path, sizeof(path), "%s/" GATEWAY_KEY, dir);
	json_gen_key_str(g, "key", path);
	char addrs[HUB_GATEWAY_LISTEN_MAX][GATEWAY_ADDR_MAX];
	size_t n = gateway_listen_addresses(d, addrs, HUB_GATEWAY_LISTEN_MAX);
	static const char *const kinds[] = {"mqtt", "https"};
	int64_t ports[] = {d->cfg->gateway_mqtt_port, d->cfg->gateway_https_port};
	for (size_t k = 0; k < 2; k++) {
		json_gen_str(g, kinds[k]);
		yajl_gen_array_open(g);
		for (size_t i = 0; i < n; i++) {
			char a[GATEWAY_ADDR_MAX + 16];
			snprintf(a, sizeof(a), "%s:%lld", addrs[i], (long long)ports[k]);
			json_gen_str(g, a);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}
