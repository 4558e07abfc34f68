/* instance_spec <-> spec.json, and the checks every spec passes before a
 * shim acts on it (spec.json is read back by a later process, so it is
 * treated as outside input). */
#include "shim/shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/names.h"
#include "common/strv.h"

#define SPEC_FILE_MAX	       (1 << 20)
#define SPEC_STRV_MAX	       4096 /* args, env, capability lists */
#define SPEC_LAYERS_MAX	       128  /* overlay takes more, images rarely have more than ~40 */
#define SPEC_BINDS_MAX	       256
#define SPEC_STR_MAX	       4096 /* one path, argument or variable */
#define SPEC_HOSTS_MAX	       1024 /* /etc/hosts lines, each at most SPEC_LINE_MAX */
#define SPEC_LINE_MAX	       1024
#define SPEC_DNS_MAX	       32
#define HEALTH_DURATION_MAX_MS (366LL * 24 * 3600 * 1000)

bool instance_name_valid(const char *name)
{
	return name && name_valid(name, strlen(name), INSTANCE_NAME_MAX);
}

void bind_mounts_free(struct bind_mount *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_many(b[i].source, b[i].destination);
	free(b);
}

void device_rules_free(struct device_rule *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_many(d[i].path, d[i].path_in, d[i].permissions);
	free(d);
}

struct bind_mount *bind_mounts_dup(const struct bind_mount *b, size_t n, bool *ok)
{
	struct bind_mount *c = n ? calloc(n, sizeof(*c)) : NULL;
	if (n && !c)
		*ok = false;
	for (size_t i = 0; c && i < n; i++) {
		c[i].source = dup_or_null(b[i].source, ok);
		c[i].destination = dup_or_null(b[i].destination, ok);
		c[i].readonly = b[i].readonly;
	}
	return c;
}

struct device_rule *device_rules_dup(const struct device_rule *d, size_t n, bool *ok)
{
	struct device_rule *c = n ? calloc(n, sizeof(*c)) : NULL;
	if (n && !c)
		*ok = false;
	for (size_t i = 0; c && i < n; i++) {
		c[i].path = dup_or_null(d[i].path, ok);
		c[i].path_in = dup_or_null(d[i].path_in, ok);
		c[i].permissions = dup_or_null(d[i].permissions, ok);
	}
	return c;
}

void instance_spec_clear(struct instance_spec *spec)
{
	free_many(spec->name, spec->rootfs, spec->image_digest, spec->cwd, spec->user,
		  spec->hostname, spec->netns);
	strv_free_many(spec->layer_dirs, spec->args, spec->env, spec->cap_add, spec->cap_drop,
		       spec->hosts, spec->dns, spec->dns_search, spec->dns_options,
		       spec->health.test, spec->extra_hosts);
	bind_mounts_free(spec->binds, spec->n_binds);
	device_rules_free(spec->devices, spec->n_devices);
	memset(spec, 0, sizeof(*spec));
}

void instance_spec_free(struct instance_spec *spec)
{
	if (!spec)
		return;
	instance_spec_clear(spec);
	free(spec);
}

static int check_path(const char *what, const char *p, struct berr *err)
{
	if (!p || p[0] != '/')
		return berr_set(err, 0, "%s: \"%s\" is not an absolute path", what, p ? p : "");
	if (strlen(p) >= PATH_MAX)
		return berr_set(err, 0, "%s: path longer than %d bytes", what, PATH_MAX);
	return 0;
}

/* Text for /etc/hosts and /etc/resolv.conf: one line each, printable. */
static bool line_ok(const char *s, size_t max, bool spaces)
{
	size_t n = strlen(s);
	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 ? !(spaces && c == '\t') : c == 0x7f || (!spaces && c == ' '))
			return false;
	}
	return true;
}

static int check_network_lines(const struct instance_spec *spec, struct berr *err)
{
	if (strv_len(spec->hosts) > SPEC_HOSTS_MAX)
		return berr_set(err, 0, "more than %d /etc/hosts lines", SPEC_HOSTS_MAX);
	for (size_t i = 0; spec->hosts && spec->hosts[i]; i++)
		if (!line_ok(spec->hosts[i], SPEC_LINE_MAX, true))
			return berr_set(err, 0, "/etc/hosts line %zu is not one line of text",
					i + 1);
	if (strv_len(spec->dns) > SPEC_DNS_MAX || strv_len(spec->dns_search) > SPEC_DNS_MAX ||
	    strv_len(spec->dns_options) > SPEC_DNS_MAX)
		return berr_set(err, 0, "more than %d name servers, search domains or options",
				SPEC_DNS_MAX);
	for (size_t i = 0; spec->dns && spec->dns[i]; i++) {
		unsigned char a[16];
		if (inet_pton(AF_INET, spec->dns[i], a) != 1 &&
		    inet_pton(AF_INET6, spec->dns[i], a) != 1)
			return berr_set(err, 0, "name server \"%.64s\" is not an IP address",
					spec->dns[i]);
	}
	for (size_t i = 0; spec->dns_search && spec->dns_search[i]; i++)
		if (!line_ok(spec->dns_search[i], 253, false))
			return berr_set(err, 0, "search domain %zu is not a domain name", i + 1);
	for (size_t i = 0; spec->dns_options && spec->dns_options[i]; i++)
		if (!line_ok(spec->dns_options[i], 64, false))
			return berr_set(err, 0, "resolver option %zu is not one word", i + 1);
	if ((spec->dns_search || spec->dns_options) && !spec->dns)
		return berr_set(err, 0, "search domains and resolver options go with name servers");
	return 0;
}

bool extra_host_valid(const char *entry)
{
	const char *colon = strchr(entry, ':');
	char name[256];
	unsigned char addr[16];
	if (!colon || (size_t)(colon - entry) >= sizeof(name))
		return false;
	memcpy(name, entry, (size_t)(colon - entry));
	name[colon - entry] = '\0';
	return hostname_valid(name, 255) && (inet_pton(AF_INET, colon + 1, addr) == 1 ||
					     inet_pton(AF_INET6, colon + 1, addr) == 1);
}

int instance_spec_validate(const struct instance_spec *spec, struct berr *err)
{
	if (!instance_name_valid(spec->name))
		return berr_set(
		    err, 0,
		    "instance name \"%s\" is invalid (1-%d of A-Z a-z 0-9 _ . -, starting "
		    "with a letter or digit)",
		    spec->name ? spec->name : "", INSTANCE_NAME_MAX);
	size_t nl = strv_len(spec->layer_dirs);
	if ((nl > 0) == (spec->rootfs != NULL))
		return berr_set(err, 0,
				"instance %s: needs either image layers or a root directory",
				spec->name);
	if (nl > SPEC_LAYERS_MAX)
		return berr_set(err, 0, "instance %s: %zu layers is over the limit of %d",
				spec->name, nl, SPEC_LAYERS_MAX);
	for (size_t i = 0; i < nl; i++)
		if (check_path("layer", spec->layer_dirs[i], err) < 0)
			return berr_wrap(err, "instance %s", spec->name);
	if (spec->rootfs && check_path("rootfs", spec->rootfs, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	if (!spec->args || !spec->args[0] || !spec->args[0][0])
		return berr_set(err, 0,
				"instance %s: no command to run (the image has no Entrypoint "
				"or Cmd and none was given)",
				spec->name);
	for (size_t i = 0; spec->env && spec->env[i]; i++) {
		const char *eq = strchr(spec->env[i], '=');
		if (!eq || eq == spec->env[i])
			return berr_set(err, 0,
					"instance %s: environment entry \"%s\" is not KEY=VALUE",
					spec->name, spec->env[i]);
	}
	if (spec->cwd && check_path("working directory", spec->cwd, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	if (spec->user && (!spec->user[0] || strlen(spec->user) > 256))
		return berr_set(err, 0, "instance %s: user \"%s\" is invalid", spec->name,
				spec->user);
	if (spec->hostname && !hostname_valid(spec->hostname, 64))
		return berr_set(err, 0, "instance %s: hostname \"%s\" is invalid", spec->name,
				spec->hostname);
	for (size_t i = 0; spec->extra_hosts && spec->extra_hosts[i]; i++)
		if (!extra_host_valid(spec->extra_hosts[i]))
			return berr_set(err, 0,
					"instance %s: extra host \"%.300s\" is not name:address",
					spec->name, spec->extra_hosts[i]);
	for (size_t i = 0; i < spec->n_binds; i++) {
		const struct bind_mount *b = &spec->binds[i];
		if (check_path("bind source", b->source, err) < 0 ||
		    check_path("bind destination", b->destination, err) < 0)
			return berr_wrap(err, "instance %s", spec->name);
		if (!strcmp(b->destination, "/"))
			return berr_set(err, 0, "instance %s: cannot bind %s over the root",
					spec->name, b->source);
	}
	for (size_t i = 0; i < spec->n_devices; i++) {
		const struct device_rule *d = &spec->devices[i];
		if (check_path("device", d->path, err) < 0 ||
		    (d->path_in && check_path("device", d->path_in, err) < 0))
			return berr_wrap(err, "instance %s", spec->name);
		const char *p = d->permissions ? d->permissions : "rwm";
		if (!p[0] || strspn(p, "rwm") != strlen(p))
			return berr_set(err, 0,
					"instance %s: device %s: permissions \"%s\" are not a "
					"subset of rwm",
					spec->name, d->path, p);
	}
	if (spec->network != NET_NONE && spec->network != NET_HOST && spec->network != NET_JOIN)
		return berr_set(err, 0, "instance %s: unknown network mode", spec->name);
	if ((spec->network == NET_JOIN) != (spec->netns != NULL))
		return berr_set(err, 0,
				"instance %s: a network namespace goes with network \"netns\"",
				spec->name);
	if (spec->netns && check_path("network namespace", spec->netns, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	if (check_network_lines(spec, err) < 0)
		return berr_wrap(err, "instance %s", spec->name);
	if (spec->memory < -1 || spec->memory_swap < -1 || spec->pids_limit < -1 ||
	    spec->cpu_quota_us < -1 || spec->cpu_period_us < -1 || spec->cpu_shares < -1)
		return berr_set(err, 0, "instance %s: negative resource limit", spec->name);
	if (spec->cpu_quota_us > 0 && (spec->cpu_period_us < 1000 || spec->cpu_period_us > 1000000))
		return berr_set(err, 0, "instance %s: cpu period %lld us is outside 1000..1000000",
				spec->name, (long long)spec->cpu_period_us);
	if (spec->cpu_shares > 0 && (spec->cpu_shares < 2 || spec->cpu_shares > 262144))
		return berr_set(err, 0, "instance %s: cpu shares %lld are outside 2..262144",
				spec->name, (long long)spec->cpu_shares);
	if (spec->memory_swap > 0 && spec->memory > 0 && spec->memory_swap < spec->memory)
		return berr_set(err, 0, "instance %s: memory+swap limit is below the memory limit",
				spec->name);
	const struct instance_health *h = &spec->health;
	if (h->test && (!h->test[0] || !h->test[0][0]))
		return berr_set(err, 0, "instance %s: the health check has no command", spec->name);
	if (h->interval_ms < 0 || h->timeout_ms < 0 || h->start_period_ms < 0 ||
	    h->start_interval_ms < 0 || h->retries < 0 || h->interval_ms > HEALTH_DURATION_MAX_MS ||
	    h->timeout_ms > HEALTH_DURATION_MAX_MS || h->start_period_ms > HEALTH_DURATION_MAX_MS ||
	    h->start_interval_ms > HEALTH_DURATION_MAX_MS)
		return berr_set(err, 0, "instance %s: health check timing out of range",
				spec->name);
	if (spec->userns_base < 0 || spec->userns_base > (int64_t)UINT32_MAX - 65536)
		return berr_set(err, 0, "instance %s: user namespace base %lld is out of range",
				spec->name, (long long)spec->userns_base);
	return 0;
}

/* --- writing --- */

static int gen_strv(yajl_gen g, const char *key, char *const *v)
{
	return v ? json_gen_key_strv(g, key, v) : 0;
}

static int gen_opt_str(yajl_gen g, const char *key, const char *v)
{
	return v ? json_gen_key_str(g, key, v) : 0;
}

static int gen_spec(yajl_gen g, const struct instance_spec *s)
{
	if (yajl_gen_map_open(g) != yajl_gen_status_ok ||
	    json_gen_key_str(g, "name", s->name) < 0 ||
	    gen_strv(g, "layer_dirs", s->layer_dirs) < 0 ||
	    gen_opt_str(g, "rootfs", s->rootfs) < 0 ||
	    json_gen_key_bool(g, "readonly_rootfs", s->readonly_rootfs) < 0 ||
	    gen_opt_str(g, "image_digest", s->image_digest) < 0 ||
	    gen_strv(g, "args", s->args) < 0 || gen_strv(g, "env", s->env) < 0 ||
	    gen_opt_str(g, "cwd", s->cwd) < 0 || gen_opt_str(g, "user", s->user) < 0 ||
	    gen_opt_str(g, "hostname", s->hostname) < 0)
		return -1;
	if (json_gen_str(g, "binds") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < s->n_binds; i++)
		if (yajl_gen_map_open(g) != yajl_gen_status_ok ||
		    json_gen_key_str(g, "source", s->binds[i].source) < 0 ||
		    json_gen_key_str(g, "destination", s->binds[i].destination) < 0 ||
		    json_gen_key_bool(g, "readonly", s->binds[i].readonly) < 0 ||
		    yajl_gen_map_close(g) != yajl_gen_status_ok)
			return -1;
	if (yajl_gen_array_close(g) != yajl_gen_status_ok)
		return -1;
	if (json_gen_str(g, "devices") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < s->n_devices; i++)
		if (yajl_gen_map_open(g) != yajl_gen_status_ok ||
		    json_gen_key_str(g, "path", s->devices[i].path) < 0 ||
		    gen_opt_str(g, "path_in", s->devices[i].path_in) < 0 ||
		    gen_opt_str(g, "permissions", s->devices[i].permissions) < 0 ||
		    yajl_gen_map_close(g) != yajl_gen_status_ok)
			return -1;
	if (yajl_gen_array_close(g) != yajl_gen_status_ok)
		return -1;
	static const char *const net_names[] = {
	    [NET_NONE] = "none", [NET_HOST] = "host", [NET_JOIN] = "netns"};
	if (json_gen_key_str(g, "network", net_names[s->network]) < 0 ||
	    gen_opt_str(g, "netns", s->netns) < 0 || gen_strv(g, "hosts", s->hosts) < 0 ||
	    gen_strv(g, "dns", s->dns) < 0 || gen_strv(g, "dns_search", s->dns_search) < 0 ||
	    gen_strv(g, "dns_options", s->dns_options) < 0 ||
	    gen_strv(g, "extra_hosts", s->extra_hosts) < 0 ||
	    json_gen_key_bool(g, "userns", s->userns) < 0 ||
	    json_gen_key_int(g, "userns_base", s->userns_base) < 0 ||
	    json_gen_key_int(g, "memory", s->memory) < 0 ||
	    json_gen_key_int(g, "memory_swap", s->memory_swap) < 0 ||
	    json_gen_key_int(g, "pids_limit", s->pids_limit) < 0 ||
	    json_gen_key_int(g, "cpu_quota_us", s->cpu_quota_us) < 0 ||
	    json_gen_key_int(g, "cpu_period_us", s->cpu_period_us) < 0 ||
	    json_gen_key_int(g, "cpu_shares", s->cpu_shares) < 0 ||
	    gen_strv(g, "cap_add", s->cap_add) < 0 || gen_strv(g, "cap_drop", s->cap_drop) < 0 ||
	    json_gen_key_bool(g, "privileged", s->privileged) < 0 ||
	    json_gen_key_int(g, "stop_grace_sec", s->stop_grace_sec) < 0 ||
	    json_gen_key_int(g, "log_max_bytes", s->log_max_bytes) < 0)
		return -1;
	const struct instance_health *h = &s->health;
	if (h->test &&
	    (json_gen_str(g, "health") < 0 || yajl_gen_map_open(g) != yajl_gen_status_ok ||
	     gen_strv(g, "test", h->test) < 0 ||
	     json_gen_key_int(g, "interval_ms", h->interval_ms) < 0 ||
	     json_gen_key_int(g, "timeout_ms", h->timeout_ms) < 0 ||
	     json_gen_key_int(g, "start_period_ms", h->start_period_ms) < 0 ||
	     json_gen_key_int(g, "start_interval_ms", h->start_interval_ms) < 0 ||
	     json_gen_key_int(g, "retries", h->retries) < 0 ||
	     json_gen_key_bool(g, "stop_when_unhealthy", h->stop_when_unhealthy) < 0 ||
	     yajl_gen_map_close(g) != yajl_gen_status_ok))
		return -1;
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

int instance_spec_to_json(const struct instance_spec *spec, char **out, size_t *len,
			  struct berr *err)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return berr_set(err, ENOMEM, "instance %s: spec", spec->name);
	int rc = gen_spec(g, spec);
	*out = json_gen_done_if(g, rc == 0, len);
	if (!*out)
		return berr_set(
		    err, rc == 0 ? ENOMEM : EINVAL,
		    "instance %s: cannot write the spec as JSON (strings must be UTF-8)",
		    spec->name);
	return 0;
}

int instance_spec_write(const struct instance_spec *spec, const char *path, struct berr *err)
{
	if (instance_spec_validate(spec, err) < 0)
		return -1;
	cleanup_free char *json = NULL;
	size_t len = 0;
	if (instance_spec_to_json(spec, &json, &len, err) < 0)
		return -1;
	/* The environment may carry connection strings: owner only. */
	return fs_write_file_atomic(path, json, len, 0600, err);
}

/* --- reading --- */

static int read_str(yajl_val obj, const char *key, bool required, char **out, struct berr *err)
{
	const char *s;
	if (json_get_str(obj, key, "spec", required, &s, err) < 0)
		return -1;
	if (!s)
		return 0;
	if (strlen(s) > SPEC_STR_MAX)
		return berr_set(err, 0, "spec.%s: longer than %d bytes", key, SPEC_STR_MAX);
	*out = strdup(s);
	return *out ? 0 : berr_set(err, ENOMEM, "spec.%s", key);
}

static int read_strv(yajl_val obj, const char *key, size_t max, char ***out, struct berr *err)
{
	return json_get_strv(obj, key, "spec", max, SPEC_STR_MAX, out, err);
}

static int read_health(yajl_val root, struct instance_health *h, struct berr *err)
{
	yajl_val v = NULL;
	if (json_get_obj(root, "health", "spec", false, &v, err) < 0)
		return -1;
	if (!v)
		return 0;
	int64_t retries = 0;
	if (json_get_strv(v, "test", "spec.health", SPEC_STRV_MAX, SPEC_STR_MAX, &h->test, err) <
		0 ||
	    json_get_i64(v, "interval_ms", "spec.health", false, &h->interval_ms, err) < 0 ||
	    json_get_i64(v, "timeout_ms", "spec.health", false, &h->timeout_ms, err) < 0 ||
	    json_get_i64(v, "start_period_ms", "spec.health", false, &h->start_period_ms, err) <
		0 ||
	    json_get_i64(v, "start_interval_ms", "spec.health", false, &h->start_interval_ms, err) <
		0 ||
	    json_get_i64(v, "retries", "spec.health", false, &retries, err) < 0 ||
	    json_get_bool(v, "stop_when_unhealthy", "spec.health", false, &h->stop_when_unhealthy,
			  err) < 0)
		return -1;
	if (retries < 0 || retries > 1000000)
		return berr_set(err, 0, "spec.health.retries: %lld is outside 0..1000000",
				(long long)retries);
	h->retries = (int)retries;
	return 0;
}

static int read_spec(yajl_val root, struct instance_spec *s, struct berr *err)
{
	if (!YAJL_IS_OBJECT(root))
		return berr_set(err, 0, "spec: expected an object");
	if (read_str(root, "name", true, &s->name, err) < 0 ||
	    read_strv(root, "layer_dirs", SPEC_LAYERS_MAX, &s->layer_dirs, err) < 0 ||
	    read_str(root, "rootfs", false, &s->rootfs, err) < 0 ||
	    json_get_bool(root, "readonly_rootfs", "spec", false, &s->readonly_rootfs, err) < 0 ||
	    read_str(root, "image_digest", false, &s->image_digest, err) < 0 ||
	    read_strv(root, "args", SPEC_STRV_MAX, &s->args, err) < 0 ||
	    read_strv(root, "env", SPEC_STRV_MAX, &s->env, err) < 0 ||
	    read_str(root, "cwd", false, &s->cwd, err) < 0 ||
	    read_str(root, "user", false, &s->user, err) < 0 ||
	    read_str(root, "hostname", false, &s->hostname, err) < 0)
		return -1;

	yajl_val binds;
	if (json_get_array(root, "binds", "spec", false, &binds, err) < 0)
		return -1;
	if (binds && binds->u.array.len) {
		if (binds->u.array.len > SPEC_BINDS_MAX)
			return berr_set(err, 0, "spec.binds: more than %d entries", SPEC_BINDS_MAX);
		s->binds = calloc(binds->u.array.len, sizeof(*s->binds));
		if (!s->binds)
			return berr_set(err, ENOMEM, "spec.binds");
		for (size_t i = 0; i < binds->u.array.len; i++) {
			yajl_val b = binds->u.array.values[i];
			s->n_binds = i + 1;
			if (!YAJL_IS_OBJECT(b))
				return berr_set(err, 0, "spec.binds[%zu]: expected an object", i);
			if (read_str(b, "source", true, &s->binds[i].source, err) < 0 ||
			    read_str(b, "destination", true, &s->binds[i].destination, err) < 0 ||
			    json_get_bool(b, "readonly", "spec.binds", false, &s->binds[i].readonly,
					  err) < 0)
				return berr_wrap(err, "spec.binds[%zu]", i);
		}
	}
	yajl_val devs;
	if (json_get_array(root, "devices", "spec", false, &devs, err) < 0)
		return -1;
	if (devs && devs->u.array.len) {
		if (devs->u.array.len > SPEC_BINDS_MAX)
			return berr_set(err, 0, "spec.devices: more than %d entries",
					SPEC_BINDS_MAX);
		s->devices = calloc(devs->u.array.len, sizeof(*s->devices));
		if (!s->devices)
			return berr_set(err, ENOMEM, "spec.devices");
		for (size_t i = 0; i < devs->u.array.len; i++) {
			yajl_val d = devs->u.array.values[i];
			s->n_devices = i + 1;
			if (!YAJL_IS_OBJECT(d))
				return berr_set(err, 0, "spec.devices[%zu]: expected an object", i);
			if (read_str(d, "path", true, &s->devices[i].path, err) < 0 ||
			    read_str(d, "path_in", false, &s->devices[i].path_in, err) < 0 ||
			    read_str(d, "permissions", false, &s->devices[i].permissions, err) < 0)
				return berr_wrap(err, "spec.devices[%zu]", i);
		}
	}

	const char *net = NULL;
	if (json_get_str(root, "network", "spec", false, &net, err) < 0)
		return -1;
	if (!net || !strcmp(net, "none"))
		s->network = NET_NONE;
	else if (!strcmp(net, "host"))
		s->network = NET_HOST;
	else if (!strcmp(net, "netns"))
		s->network = NET_JOIN;
	else
		return berr_set(err, 0, "spec.network: \"%s\" is not host, none or netns", net);
	if (read_str(root, "netns", false, &s->netns, err) < 0 ||
	    read_strv(root, "hosts", SPEC_HOSTS_MAX, &s->hosts, err) < 0 ||
	    read_strv(root, "dns", SPEC_DNS_MAX, &s->dns, err) < 0 ||
	    read_strv(root, "dns_search", SPEC_DNS_MAX, &s->dns_search, err) < 0 ||
	    read_strv(root, "dns_options", SPEC_DNS_MAX, &s->dns_options, err) < 0)
		return -1;

	int64_t grace = 0, logmax = 0;
	if (json_get_bool(root, "userns", "spec", false, &s->userns, err) < 0 ||
	    json_get_i64(root, "userns_base", "spec", false, &s->userns_base, err) < 0 ||
	    json_get_i64(root, "memory", "spec", false, &s->memory, err) < 0 ||
	    json_get_i64(root, "memory_swap", "spec", false, &s->memory_swap, err) < 0 ||
	    json_get_i64(root, "pids_limit", "spec", false, &s->pids_limit, err) < 0 ||
	    json_get_i64(root, "cpu_quota_us", "spec", false, &s->cpu_quota_us, err) < 0 ||
	    json_get_i64(root, "cpu_period_us", "spec", false, &s->cpu_period_us, err) < 0 ||
	    json_get_i64(root, "cpu_shares", "spec", false, &s->cpu_shares, err) < 0 ||
	    read_strv(root, "cap_add", SPEC_STRV_MAX, &s->cap_add, err) < 0 ||
	    read_strv(root, "cap_drop", SPEC_STRV_MAX, &s->cap_drop, err) < 0 ||
	    read_strv(root, "extra_hosts", SPEC_STRV_MAX, &s->extra_hosts, err) < 0 ||
	    json_get_bool(root, "privileged", "spec", false, &s->privileged, err) < 0 ||
	    json_get_i64(root, "stop_grace_sec", "spec", false, &grace, err) < 0 ||
	    json_get_i64(root, "log_max_bytes", "spec", false, &logmax, err) < 0)
		return -1;
	if (grace < 0 || grace > 24 * 3600)
		return berr_set(err, 0, "spec.stop_grace_sec: %lld is outside 0..86400",
				(long long)grace);
	s->stop_grace_sec = (int)grace;
	if (logmax < 0)
		return berr_set(err, 0, "spec.log_max_bytes: negative");
	s->log_max_bytes = logmax;
	if (read_health(root, &s->health, err) < 0)
		return -1;
	return instance_spec_validate(s, err);
}

static int fill(yajl_val root, void *s, const void *arg, struct berr *err)
{
	return read_spec(root, s, err);
}

static void free_spec(void *s)
{
	instance_spec_free(s);
}

int instance_spec_from_json(const char *buf, size_t len, const char *what,
			    struct instance_spec **out, struct berr *err)
{
	*out = json_parse_new(buf, len, SPEC_FILE_MAX, what, sizeof(**out), fill, NULL, free_spec,
			      err);
	return *out ? 0 : -1;
}

int instance_spec_read(const char *path, struct instance_spec **out, struct berr *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	*out = NULL;
	if (fs_read_file(path, SPEC_FILE_MAX, &data, &len, err) < 0)
		return -1;
	return instance_spec_from_json(data, len, path, out, err);
}
