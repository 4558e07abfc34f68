#include "agent/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/jpath.h"
#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/names.h"
#include "common/sas.h"
#include "common/url.h"
#include "common/sock.h"

bool agent_device_id_valid(const char *id)
{
	return chars_valid(id, "-.:_%=!(),@'", DEVICE_ID_MAX);
}

/* A host to connect to: a host name or an IP address (IPv6 in brackets),
 * with an optional ":port". */
static bool address_valid(const char *a)
{
	return chars_valid(a, "-.:[]", HOSTNAME_MAX);
}

void registry_creds_free(struct registry_cred *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_many(r[i].host, r[i].username, r[i].password, r[i].ca_file);
	free(r);
}

void agent_config_free(struct agent_config *cfg)
{
	if (!cfg)
		return;
	free_many(cfg->device_id, cfg->iothub_hostname, cfg->gateway_hostname, cfg->device_key,
		  cfg->root, cfg->run, cfg->deployment_file, cfg->hub_store, cfg->hub_listen_tcp,
		  cfg->hub_tls_cert, cfg->hub_tls_key, cfg->upstream_url, cfg->upstream_ca_file,
		  cfg->gateway_address, cfg->edge_ca_cert, cfg->edge_ca_key, cfg->trust_bundle,
		  cfg->manifest_trust_bundle, cfg->upstream_rest_url, cfg->metrics_listen);
	registry_creds_free(cfg->registries, cfg->n_registries);
	config_networks_free(cfg);
	free(cfg);
}

/* Refuses members other than the known ones, so a misspelt option is an
 * error rather than silently ignored. */
static int only_keys(yajl_val obj, const struct jpath *path, const char *const *known,
		     struct berr *err)
{
	size_t i = 0;
	const char *k = json_unknown_key(obj, known, &i);
	if (!k)
		return 0;
	struct jpath kp;
	jpath_key(&kp, path, k);
	return berr_set(err, 0, "%s: unknown option", kp.s);
}

static int dup_opt(const char *s, char **out, struct berr *err)
{
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : berr_set(err, ENOMEM, "config");
}

static int abs_path(yajl_val obj, const char *key, const struct jpath *path, char **out,
		    struct berr *err)
{
	const char *s = NULL;
	if (jp_str(obj, key, path, false, 4095, &s, err) < 0)
		return -1;
	if (s && s[0] != '/') {
		struct jpath kp;
		jpath_key(&kp, path, key);
		return berr_set(err, 0, "%s: must be an absolute path", kp.s);
	}
	return dup_opt(s, out, err);
}

static int parse_registries(yajl_val regs, const struct jpath *path, struct agent_config *cfg,
			    struct berr *err)
{
	if (!regs)
		return 0;
	size_t n = regs->u.object.len;
	if (n > 64)
		return berr_set(err, 0, "%s: more than 64 registries", path->s);
	cfg->registries = calloc(n ? n : 1, sizeof(*cfg->registries));
	if (!cfg->registries)
		return berr_set(err, ENOMEM, "config");
	static const char *const known[] = {"insecure", "username", "password", "ca_file", NULL};
	for (size_t i = 0; i < n; i++) {
		const char *host = regs->u.object.keys[i];
		yajl_val r = regs->u.object.values[i];
		struct jpath rp;
		jpath_key(&rp, path, host);
		if (!address_valid(host))
			return berr_set(err, 0, "%s: not a registry host[:port]", rp.s);
		if (!YAJL_IS_OBJECT(r))
			return berr_set(err, 0, "%s: expected an object", rp.s);
		if (only_keys(r, &rp, known, err) < 0)
			return -1;
		struct registry_cred *c = &cfg->registries[cfg->n_registries++];
		const char *user = NULL, *pass = NULL;
		if (dup_opt(host, &c->host, err) < 0 ||
		    jp_bool(r, "insecure", &rp, false, &c->insecure, err) < 0 ||
		    jp_str(r, "username", &rp, false, 256, &user, err) < 0 ||
		    jp_str(r, "password", &rp, false, 4096, &pass, err) < 0 ||
		    dup_opt(user, &c->username, err) < 0 || dup_opt(pass, &c->password, err) < 0 ||
		    abs_path(r, "ca_file", &rp, &c->ca_file, err) < 0)
			return -1;
		if (!!user != !!pass)
			return berr_set(err, 0, "%s: username and password go together", rp.s);
	}
	return 0;
}

/* Member key of obj: an object of the known keys, or absent (*out NULL);
 * *path is its JSON path. */
static int sub_object(yajl_val obj, const char *key, const struct jpath *obj_path,
		      const char *const *known, yajl_val *out, struct jpath *path, struct berr *err)
{
	jpath_key(path, obj_path, key);
	if (jp_obj(obj, key, obj_path, false, out, err) < 0)
		return -1;
	return *out ? only_keys(*out, path, known, err) : 0;
}

/* hub.gateway: {"enabled", "address", "mqtt_port", "https_port"} */
static int parse_gateway(yajl_val hub, const struct jpath *hub_path, struct agent_config *cfg,
			 struct berr *err)
{
	yajl_val gw;
	struct jpath path;
	static const char *const known[] = {"enabled", "address", "mqtt_port", "https_port", NULL};
	if (sub_object(hub, "gateway", hub_path, known, &gw, &path, err) < 0)
		return -1;
	if (!gw)
		return 0;
	const char *addr = NULL;
	if (jp_bool(gw, "enabled", &path, false, &cfg->gateway_enabled, err) < 0 ||
	    jp_str(gw, "address", &path, false, 45, &addr, err) < 0 ||
	    jp_int(gw, "mqtt_port", &path, false, 1, 65535, &cfg->gateway_mqtt_port, err) < 0 ||
	    jp_int(gw, "https_port", &path, false, 1, 65535, &cfg->gateway_https_port, err) < 0)
		return -1;
	if (addr) {
		unsigned char buf[16];
		struct jpath kp;
		jpath_key(&kp, &path, "address");
		if (inet_pton(AF_INET, addr, buf) != 1 || buf[0] != 127)
			return berr_set(err, 0,
					"%s: expected a loopback address (127.x.y.z): host-network "
					"modules reach the gateway there",
					kp.s);
		free(cfg->gateway_address);
		if (!(cfg->gateway_address = strdup(addr)))
			return berr_set(err, ENOMEM, "config");
	}
	if (cfg->gateway_mqtt_port == cfg->gateway_https_port)
		return berr_set(err, 0, "%s: mqtt_port and https_port must differ", path.s);
	return 0;
}

static int parse_hub(yajl_val hub, const struct jpath *path, struct agent_config *cfg,
		     struct berr *err)
{
	if (!hub)
		return 0;
	static const char *const known[] = {
	    "enabled",	  "store",	     "listen_tcp",	 "tls_cert",   "tls_key",
	    "max_packet", "max_store_bytes", "min_free_percent", "store_full", "gateway",
	    NULL};
	if (only_keys(hub, path, known, err) < 0)
		return -1;
	if (parse_gateway(hub, path, cfg, err) < 0)
		return -1;
	const char *tcp = NULL, *full = NULL;
	if (jp_bool(hub, "enabled", path, false, &cfg->hub_enabled, err) < 0 ||
	    abs_path(hub, "store", path, &cfg->hub_store, err) < 0 ||
	    jp_str(hub, "listen_tcp", path, false, HOSTNAME_MAX + 6, &tcp, err) < 0 ||
	    abs_path(hub, "tls_cert", path, &cfg->hub_tls_cert, err) < 0 ||
	    abs_path(hub, "tls_key", path, &cfg->hub_tls_key, err) < 0 ||
	    jp_int(hub, "max_packet", path, false, 1024, 16 * 1024 * 1024, &cfg->hub_max_packet,
		   err) < 0 ||
	    jp_int(hub, "max_store_bytes", path, false, 0, 1LL << 50, &cfg->hub_max_store_bytes,
		   err) < 0 ||
	    jp_int(hub, "min_free_percent", path, false, 0, 90, &cfg->hub_min_free_percent, err) <
		0 ||
	    jp_str(hub, "store_full", path, false, 32, &full, err) < 0)
		return -1;
	if (cfg->hub_max_store_bytes && cfg->hub_max_store_bytes < 64 * 1024) {
		struct jpath kp;
		jpath_key(&kp, path, "max_store_bytes");
		return berr_set(err, 0, "%s: at least 65536 (or 0: no bound)", kp.s);
	}
	if (full && strcmp(full, "reject") && strcmp(full, "drop-oldest")) {
		struct jpath kp;
		jpath_key(&kp, path, "store_full");
		return berr_set(err, 0, "%s: expected reject or drop-oldest", kp.s);
	}
	cfg->hub_store_drop_oldest = full && !strcmp(full, "drop-oldest");
	if (tcp) {
		const char *colon = strrchr(tcp, ':');
		struct jpath kp;
		jpath_key(&kp, path, "listen_tcp");
		if (!colon || colon == tcp || !colon[1] ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return berr_set(err, 0, "%s: expected HOST:PORT", kp.s);
		if (dup_opt(tcp, &cfg->hub_listen_tcp, err) < 0)
			return -1;
	}
	if (!!cfg->hub_tls_cert != !!cfg->hub_tls_key)
		return berr_set(err, 0, "%s: tls_cert and tls_key go together", path->s);
	return 0;
}

/* Plain text is for loopback (tests) unless the config says insecure. */
static int check_cloud_url(const char *text, unsigned schemes, bool insecure,
			   const struct jpath *kp, struct berr *err)
{
	struct url u;
	if (url_parse(text, schemes, &u, err) < 0)
		return berr_wrap(err, "%s", kp->s);
	if (!u.tls && !insecure && !url_host_is_loopback(u.host))
		return berr_set(err, 0,
				"%s: plain text to %s; use TLS, or set \"insecure\": true to allow "
				"it",
				kp->s, u.host);
	return 0;
}

static int parse_upstream(yajl_val up, const struct jpath *path, struct agent_config *cfg,
			  struct berr *err)
{
	cfg->upstream_identities = true;
	if (!up)
		return 0;
	static const char *const known[] = {"url",	  "ca_file",  "rest_url",
					    "identities", "insecure", NULL};
	if (only_keys(up, path, known, err) < 0)
		return -1;
	const char *url = NULL, *rest = NULL, *ids = NULL;
	struct jpath kp;
	if (jp_str(up, "url", path, true, URL_MAX, &url, err) < 0 ||
	    jp_str(up, "rest_url", path, false, URL_MAX, &rest, err) < 0 ||
	    jp_str(up, "identities", path, false, 16, &ids, err) < 0 ||
	    jp_bool(up, "insecure", path, false, &cfg->upstream_insecure, err) < 0 ||
	    abs_path(up, "ca_file", path, &cfg->upstream_ca_file, err) < 0)
		return -1;
	if (ids && strcmp(ids, "iothub") && strcmp(ids, "none")) {
		jpath_key(&kp, path, "identities");
		return berr_set(err, 0, "%s: expected \"iothub\" or \"none\"", kp.s);
	}
	cfg->upstream_identities = !ids || !strcmp(ids, "iothub");
	jpath_key(&kp, path, "url");
	if (check_cloud_url(url, 1u << URL_MQTT | 1u << URL_MQTTS, cfg->upstream_insecure, &kp,
			    err) < 0)
		return -1;
	char dflt[URL_MAX];
	if (!rest) {
		snprintf(dflt, sizeof(dflt), "https://%s", cfg->iothub_hostname);
		rest = dflt;
	}
	jpath_key(&kp, path, "rest_url");
	if (check_cloud_url(rest, 1u << URL_HTTP | 1u << URL_HTTPS, cfg->upstream_insecure, &kp,
			    err) < 0)
		return -1;
	if (dup_opt(url, &cfg->upstream_url, err) < 0 ||
	    dup_opt(rest, &cfg->upstream_rest_url, err) < 0)
		return -1;
	return 0;
}

/* edge_ca: {"cert", "key"}, both absolute paths, together. */
static int parse_edge_ca(yajl_val doc, const struct jpath *root, struct agent_config *cfg,
			 struct berr *err)
{
	yajl_val ca;
	struct jpath path;
	static const char *const known[] = {"cert", "key", NULL};
	if (sub_object(doc, "edge_ca", root, known, &ca, &path, err) < 0)
		return -1;
	if (!ca)
		return 0;
	if (abs_path(ca, "cert", &path, &cfg->edge_ca_cert, err) < 0 ||
	    abs_path(ca, "key", &path, &cfg->edge_ca_key, err) < 0)
		return -1;
	if (!cfg->edge_ca_cert || !cfg->edge_ca_key)
		return berr_set(err, 0, "%s: cert and key go together", path.s);
	return 0;
}

static int parse_doc(yajl_val doc, struct agent_config *cfg, struct berr *err)
{
	struct jpath root;
	jpath_root(&root);
	if (!YAJL_IS_OBJECT(doc))
		return berr_set(err, 0, "$: expected an object");
	static const char *const known[] = {"device_id",
					    "iothub_hostname",
					    "gateway_hostname",
					    "device_key",
					    "root",
					    "run",
					    "deployment_file",
					    "registries",
					    "hub",
					    "upstream",
					    "deployments",
					    "restart_backoff_unit_ms",
					    "reconcile_interval_ms",
					    "token_ttl_secs",
					    "stop_grace_secs",
					    "stop_modules_on_exit",
					    "allow_privileged",
					    "networks",
					    "default_network",
					    "cni_path",
					    "edge_ca",
					    "trust_bundle",
					    "manifest_trust_bundle",
					    "metrics_listen",
					    NULL};
	if (only_keys(doc, &root, known, err) < 0)
		return -1;
	const char *device_id, *hub, *gw = NULL, *key;
	struct jpath p;
	if (jp_str(doc, "device_id", &root, true, 0, &device_id, err) < 0)
		return -1;
	if (!agent_device_id_valid(device_id)) {
		jpath_key(&p, &root, "device_id");
		return berr_set(
		    err, 0,
		    "%s: must be 1-%d characters of letters, digits and - . : _ %% = ! ( ) , @ '",
		    p.s, DEVICE_ID_MAX);
	}
	if (jp_str(doc, "iothub_hostname", &root, true, 0, &hub, err) < 0)
		return -1;
	if (!address_valid(hub)) {
		jpath_key(&p, &root, "iothub_hostname");
		return berr_set(err, 0, "%s: not a host name", p.s);
	}
	if (!strchr(hub, '.')) {
		/* The Azure IoT C SDK refuses IOTEDGE_IOTHUBHOSTNAME without one. */
		jpath_key(&p, &root, "iothub_hostname");
		return berr_set(err, 0,
				"%s: \"%s\" has no dot: IoT Hub names are like "
				"myhub.azure-devices.net, and the Azure IoT C SDK refuses a name "
				"without a dot",
				p.s, hub);
	}
	if (jp_str(doc, "gateway_hostname", &root, false, 0, &gw, err) < 0)
		return -1;
	if (gw && !address_valid(gw)) {
		jpath_key(&p, &root, "gateway_hostname");
		return berr_set(err, 0, "%s: not a host name", p.s);
	}
	if (jp_str(doc, "device_key", &root, true, SAS_KEY_B64_MAX - 1, &key, err) < 0)
		return -1;
	unsigned char raw[SAS_KEY_B64_MAX];
	int klen = base64_decode(key, strlen(key), raw, sizeof(raw));
	if (klen < 16) {
		jpath_key(&p, &root, "device_key");
		return berr_set(err, 0, "%s: expected a base64 key of at least 16 bytes", p.s);
	}
	if (dup_opt(device_id, &cfg->device_id, err) < 0 ||
	    dup_opt(hub, &cfg->iothub_hostname, err) < 0 ||
	    dup_opt(gw, &cfg->gateway_hostname, err) < 0 ||
	    dup_opt(key, &cfg->device_key, err) < 0 ||
	    abs_path(doc, "root", &root, &cfg->root, err) < 0 ||
	    abs_path(doc, "run", &root, &cfg->run, err) < 0 ||
	    abs_path(doc, "deployment_file", &root, &cfg->deployment_file, err) < 0 ||
	    abs_path(doc, "trust_bundle", &root, &cfg->trust_bundle, err) < 0 ||
	    abs_path(doc, "manifest_trust_bundle", &root, &cfg->manifest_trust_bundle, err) < 0 ||
	    parse_edge_ca(doc, &root, cfg, err) < 0)
		return -1;

	yajl_val regs, hubo, up;
	struct jpath rp, hp, up_p;
	jpath_key(&rp, &root, "registries");
	jpath_key(&hp, &root, "hub");
	jpath_key(&up_p, &root, "upstream");
	if (jp_obj(doc, "registries", &root, false, &regs, err) < 0 ||
	    parse_registries(regs, &rp, cfg, err) < 0 ||
	    jp_obj(doc, "hub", &root, false, &hubo, err) < 0 ||
	    parse_hub(hubo, &hp, cfg, err) < 0 ||
	    jp_obj(doc, "upstream", &root, false, &up, err) < 0 ||
	    parse_upstream(up, &up_p, cfg, err) < 0)
		return -1;
	const char *deployments = NULL;
	if (jp_str(doc, "deployments", &root, false, 16, &deployments, err) < 0)
		return -1;
	if (deployments && strcmp(deployments, "cloud") && strcmp(deployments, "local")) {
		jpath_key(&p, &root, "deployments");
		return berr_set(err, 0, "%s: expected \"cloud\" or \"local\"", p.s);
	}
	cfg->deployments_cloud =
	    cfg->upstream_url && (!deployments || !strcmp(deployments, "cloud"));

	if (jp_int(doc, "restart_backoff_unit_ms", &root, false, 0, 300000,
		   &cfg->restart_backoff_unit_ms, err) < 0 ||
	    jp_int(doc, "reconcile_interval_ms", &root, false, 100, 3600000,
		   &cfg->reconcile_interval_ms, err) < 0 ||
	    jp_int(doc, "token_ttl_secs", &root, false, 10, 365LL * 24 * 3600, &cfg->token_ttl_secs,
		   err) < 0 ||
	    jp_int(doc, "stop_grace_secs", &root, false, 0, 3600, &cfg->stop_grace_secs, err) < 0 ||
	    jp_bool(doc, "stop_modules_on_exit", &root, false, &cfg->stop_modules_on_exit, err) <
		0 ||
	    jp_bool(doc, "allow_privileged", &root, false, &cfg->allow_privileged, err) < 0)
		return -1;
	const char *metrics = NULL;
	struct sockaddr_storage sa;
	socklen_t salen;
	if (jp_str(doc, "metrics_listen", &root, false, 64, &metrics, err) < 0)
		return -1;
	if (metrics && tcp_address_parse(metrics, &sa, &salen) < 0) {
		jpath_key(&p, &root, "metrics_listen");
		return berr_set(err, 0,
				"%s: expected IP:PORT (127.0.0.1:9600), [IPv6]:PORT or :PORT", p.s);
	}
	if (dup_opt(metrics, &cfg->metrics_listen, err) < 0)
		return -1;
	return config_networks_parse(doc, &root, cfg, err);
}

static int fill(yajl_val doc, void *obj, const void *arg, struct berr *err)
{
	struct agent_config *cfg = obj;
	cfg->hub_enabled = true;
	cfg->hub_min_free_percent = 2;
	cfg->gateway_enabled = true;
	cfg->gateway_mqtt_port = 8883;
	cfg->gateway_https_port = 443;
	if (!(cfg->gateway_address = strdup("127.0.0.1")))
		return berr_set(err, ENOMEM, "config");
	cfg->restart_backoff_unit_ms = 10000;
	cfg->reconcile_interval_ms = 5000;
	cfg->token_ttl_secs = 3600;
	cfg->stop_grace_secs = 10;
	cfg->stop_modules_on_exit = true;
	return parse_doc(doc, cfg, err);
}

static void free_config(void *cfg)
{
	agent_config_free(cfg);
}

int agent_config_parse(const char *buf, size_t len, const char *what, struct agent_config **out,
		       struct berr *err)
{
	*out = json_parse_new(buf, len, CONFIG_MAX_BYTES, what, sizeof(**out), fill, NULL,
			      free_config, err);
	return *out ? 0 : -1;
}

int agent_config_load(const char *path, struct agent_config **out, struct berr *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	char what[300];
	snprintf(what, sizeof(what), "config %s", path);
	if (fs_read_file(path, CONFIG_MAX_BYTES, &data, &len, err) < 0)
		return berr_wrap(err, "config");
	return agent_config_parse(data, len, what, out, err);
}

void image_ref_registry(const char *ref, char *out, size_t cap)
{
	const char *slash = strchr(ref, '/');
	size_t n = slash ? (size_t)(slash - ref) : 0;
	bool is_host = false;
	if (slash) {
		for (size_t i = 0; i < n; i++)
			if (ref[i] == '.' || ref[i] == ':')
				is_host = true;
		if (n == 9 && !strncmp(ref, "localhost", 9))
			is_host = true;
	}
	if (is_host)
		snprintf(out, cap, "%.*s", (int)n, ref);
	else
		snprintf(out, cap, "docker.io");
}

const struct registry_cred *agent_config_registry(const struct agent_config *cfg,
						  const char *image_ref)
{
	char host[HOSTNAME_MAX + 1];
	image_ref_registry(image_ref, host, sizeof(host));
	for (size_t i = 0; i < cfg->n_registries; i++)
		if (!strcmp(cfg->registries[i].host, host))
			return &cfg->registries[i];
	return NULL;
}

int agent_config_option(int argc, char **argv, const char **path)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {NULL, 0, NULL, 0}};
	int c;
	*path = CONFIG_DEFAULT_PATH;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (c != 'c')
			return -1;
		*path = optarg;
	}
	return optind == argc ? 0 : -1;
}
