#include "agent/createoptions.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/names.h"

#define CO_MAX_ITEMS	   256
#define CO_MAX_STR	   4096
#define CO_MAX_PATH	   4095
#define CPU_PERIOD_DEFAULT 100000

void create_options_warn(struct create_options *co, const char *fmt, ...)
{
	if (co->n_warnings >= CREATE_OPTIONS_WARNINGS_MAX)
		return;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	co->warnings[co->n_warnings] = strdup(buf);
	if (co->warnings[co->n_warnings])
		co->n_warnings++;
}

void create_options_clear(struct create_options *co)
{
	strv_free_many(co->env, co->cmd, co->entrypoint, co->labels, co->cap_add, co->cap_drop);
	free_many(co->working_dir, co->user, co->hostname);
	bind_mounts_free(co->binds, co->n_binds);
	device_rules_free(co->devices, co->n_devices);
	net_options_clear(&co->net);
	for (size_t i = 0; i < co->n_warnings; i++)
		free(co->warnings[i]);
	healthcheck_clear(&co->health);
	memset(co, 0, sizeof(*co));
}

/* A path without "..", NUL-free, absolute, bounded. */
static bool path_ok(const char *p)
{
	if (p[0] != '/' || strlen(p) > CO_MAX_PATH)
		return false;
	for (const char *s = p; (s = strstr(s, "..")); s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return false;
	return true;
}

static int add_bind(struct create_options *co, const char *src, const char *dst, bool ro,
		    const struct jpath *p, struct berr *err)
{
	if (!path_ok(src))
		return berr_set(err, 0,
				"%s: source \"%.64s\" must be an absolute host path (named volumes "
				"are not supported)",
				p->s, src);
	if (!path_ok(dst))
		return berr_set(err, 0, "%s: target \"%.64s\" must be an absolute path", p->s, dst);
	struct bind_mount *b = &co->binds[co->n_binds];
	b->source = strdup(src);
	b->destination = strdup(dst);
	b->readonly = ro;
	co->n_binds++;
	if (!b->source || !b->destination)
		return berr_set(err, ENOMEM, "%s", p->s);
	return 0;
}

/* "SRC:DST[:OPTS]" with OPTS a comma list of ro/rw and options berth has no
 * use for (SELinux labels, propagation, nocopy). */
static int parse_bind_string(struct create_options *co, const char *s, const struct jpath *p,
			     struct berr *err)
{
	char buf[2 * CO_MAX_PATH + 64];
	if (strlen(s) >= sizeof(buf))
		return berr_set(err, 0, "%s: too long", p->s);
	strcpy(buf, s);
	char *dst = strchr(buf, ':');
	if (!dst)
		return berr_set(err, 0, "%s: expected SOURCE:TARGET[:ro]", p->s);
	*dst++ = '\0';
	char *opts = strchr(dst, ':');
	bool ro = false;
	if (opts) {
		*opts++ = '\0';
		char *save = NULL;
		for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			if (!strcmp(o, "ro"))
				ro = true;
			else if (!strcmp(o, "rw"))
				ro = false;
			else if (strcmp(o, "z") && strcmp(o, "Z") && strcmp(o, "nocopy") &&
				 strcmp(o, "shared") && strcmp(o, "rshared") &&
				 strcmp(o, "slave") && strcmp(o, "rslave") &&
				 strcmp(o, "private") && strcmp(o, "rprivate"))
				return berr_set(err, 0, "%s: unknown bind option \"%.32s\"", p->s,
						o);
		}
	}
	return add_bind(co, buf, dst, ro, p, err);
}

static int parse_binds(struct create_options *co, yajl_val binds, yajl_val mounts,
		       const struct jpath *hc, struct berr *err)
{
	size_t nb = binds ? binds->u.array.len : 0, nm = mounts ? mounts->u.array.len : 0;
	if (nb + nm > CO_MAX_ITEMS)
		return berr_set(err, 0, "%s: more than %d binds and mounts", hc->s, CO_MAX_ITEMS);
	if (nb + nm == 0)
		return 0;
	co->binds = calloc(nb + nm, sizeof(*co->binds));
	if (!co->binds)
		return berr_set(err, ENOMEM, "%s", hc->s);
	struct jpath bp, mp, p;
	jpath_key(&bp, hc, "Binds");
	jpath_key(&mp, hc, "Mounts");
	for (size_t i = 0; i < nb; i++) {
		jpath_index(&p, &bp, i);
		const char *s = json_str(binds->u.array.values[i]);
		if (!s)
			return berr_set(err, 0, "%s: expected a string", p.s);
		if (parse_bind_string(co, s, &p, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < nm; i++) {
		jpath_index(&p, &mp, i);
		yajl_val m = mounts->u.array.values[i];
		if (!YAJL_IS_OBJECT(m))
			return berr_set(err, 0, "%s: expected an object", p.s);
		const char *type = NULL, *src = NULL, *dst = NULL;
		bool ro = false;
		if (jp_str(m, "Type", &p, false, 64, &type, err) < 0 ||
		    jp_str(m, "Source", &p, true, CO_MAX_PATH, &src, err) < 0 ||
		    jp_str(m, "Target", &p, true, CO_MAX_PATH, &dst, err) < 0 ||
		    jp_bool(m, "ReadOnly", &p, false, &ro, err) < 0)
			return -1;
		if (type && strcmp(type, "bind"))
			return berr_set(err, 0,
					"%s.Type: \"%.32s\" mounts are not supported (only bind)",
					p.s, type);
		if (add_bind(co, src, dst, ro, &p, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_devices(struct create_options *co, yajl_val devs, const struct jpath *dp,
			 struct berr *err)
{
	size_t n = devs->u.array.len;
	if (n > CO_MAX_ITEMS)
		return berr_set(err, 0, "%s: more than %d devices", dp->s, CO_MAX_ITEMS);
	if (!n)
		return 0;
	co->devices = calloc(n, sizeof(*co->devices));
	if (!co->devices)
		return berr_set(err, ENOMEM, "%s", dp->s);
	for (size_t i = 0; i < n; i++) {
		struct jpath p;
		jpath_index(&p, dp, i);
		yajl_val d = devs->u.array.values[i];
		if (!YAJL_IS_OBJECT(d))
			return berr_set(err, 0, "%s: expected an object", p.s);
		const char *host = NULL, *in = NULL, *perm = NULL;
		if (jp_str(d, "PathOnHost", &p, true, CO_MAX_PATH, &host, err) < 0 ||
		    jp_str(d, "PathInContainer", &p, false, CO_MAX_PATH, &in, err) < 0 ||
		    jp_str(d, "CgroupPermissions", &p, false, 3, &perm, err) < 0)
			return -1;
		if (!path_ok(host) || strncmp(host, "/dev/", 5))
			return berr_set(err, 0, "%s.PathOnHost: expected a path under /dev/", p.s);
		if (in && !path_ok(in))
			return berr_set(err, 0, "%s.PathInContainer: expected an absolute path",
					p.s);
		if (perm && (!*perm || strspn(perm, "rwm") != strlen(perm)))
			return berr_set(err, 0, "%s.CgroupPermissions: expected letters of \"rwm\"",
					p.s);
		struct device_rule *r = &co->devices[co->n_devices++];
		r->path = strdup(host);
		r->path_in = strdup(in ? in : host);
		r->permissions = strdup(perm ? perm : "rwm");
		if (!r->path || !r->path_in || !r->permissions)
			return berr_set(err, ENOMEM, "%s", p.s);
	}
	return 0;
}

static int parse_caps(yajl_val v, const struct jpath *p, char ***out, struct berr *err)
{
	if (jp_strv(v, p, false, 64, 64, out, err) < 0)
		return -1;
	for (size_t i = 0; *out && (*out)[i]; i++)
		if (!chars_valid((*out)[i], "_", 64)) {
			struct jpath ip;
			jpath_index(&ip, p, i);
			return berr_set(err, 0, "%s: not a capability name", ip.s);
		}
	return 0;
}

/* One warning for each member of obj berth does not handle ("HostConfig."
 * in front of a HostConfig member's name). */
static void warn_unhandled(struct create_options *co, yajl_val obj, const char *const *handled,
			   const char *prefix)
{
	size_t i = 0;
	for (const char *k; (k = json_unknown_key(obj, handled, &i));)
		create_options_warn(
		    co, "createOptions %s%.64s is not supported by berth and is ignored", prefix,
		    k);
}

static int parse_host_config(struct create_options *co, yajl_val hc, const struct jpath *hp,
			     struct berr *err)
{
	static const char *const handled[] = {
	    "Binds",	   "Mounts",	 "Memory",     "MemorySwap",   "NanoCpus", "CpuShares",
	    "CpuPeriod",   "CpuQuota",	 "PidsLimit",  "CapAdd",       "CapDrop",  "ReadonlyRootfs",
	    "NetworkMode", "Devices",	 "Privileged", "PortBindings", "Dns",	   "DnsSearch",
	    "DnsOptions",  "ExtraHosts", NULL};
	warn_unhandled(co, hc, handled, "HostConfig.");
	yajl_val binds, mounts, devs;
	if (jp_array(hc, "Binds", hp, false, &binds, err) < 0 ||
	    jp_array(hc, "Mounts", hp, false, &mounts, err) < 0 ||
	    parse_binds(co, binds, mounts, hp, err) < 0)
		return -1;
	if (jp_int(hc, "Memory", hp, false, 0, INT64_MAX, &co->memory, err) < 0 ||
	    jp_int(hc, "MemorySwap", hp, false, -1, INT64_MAX, &co->memory_swap, err) < 0 ||
	    jp_int(hc, "NanoCpus", hp, false, 0, 1024LL * 1000000000LL, &co->nano_cpus, err) < 0 ||
	    jp_int(hc, "CpuShares", hp, false, 0, 262144, &co->cpu_shares, err) < 0 ||
	    jp_int(hc, "CpuPeriod", hp, false, 0, 1000000, &co->cpu_period, err) < 0 ||
	    jp_int(hc, "CpuQuota", hp, false, -1, INT64_MAX / 2, &co->cpu_quota, err) < 0 ||
	    jp_int(hc, "PidsLimit", hp, false, -1, INT32_MAX, &co->pids_limit, err) < 0)
		return -1;
	struct jpath p;
	if (co->memory_swap > 0 && co->memory > 0 && co->memory_swap < co->memory) {
		jpath_key(&p, hp, "MemorySwap");
		return berr_set(err, 0, "%s: must not be less than Memory", p.s);
	}
	if (co->nano_cpus && (co->cpu_quota > 0 || co->cpu_period)) {
		jpath_key(&p, hp, "NanoCpus");
		return berr_set(err, 0, "%s: cannot be combined with CpuQuota or CpuPeriod", p.s);
	}
	jpath_key(&p, hp, "CapAdd");
	if (parse_caps(json_get(hc, "CapAdd"), &p, &co->cap_add, err) < 0)
		return -1;
	jpath_key(&p, hp, "CapDrop");
	if (parse_caps(json_get(hc, "CapDrop"), &p, &co->cap_drop, err) < 0)
		return -1;
	if (jp_bool(hc, "ReadonlyRootfs", hp, false, &co->readonly_rootfs, err) < 0 ||
	    jp_bool(hc, "Privileged", hp, false, &co->privileged, err) < 0)
		return -1;
	if (jp_array(hc, "Devices", hp, false, &devs, err) < 0)
		return -1;
	jpath_key(&p, hp, "Devices");
	if (devs && parse_devices(co, devs, &p, err) < 0)
		return -1;
	return 0;
}

static int parse_top(struct create_options *co, yajl_val doc, const struct jpath *root,
		     struct berr *err)
{
	static const char *const handled[] = {
	    "Env",	   "Cmd",	   "Entrypoint",       "WorkingDir",
	    "User",	   "Hostname",	   "Labels",	       "HostConfig",
	    "StopTimeout", "ExposedPorts", "NetworkingConfig", "Healthcheck",
	    NULL};
	warn_unhandled(co, doc, handled, "");
	struct jpath p;
	jpath_key(&p, root, "Env");
	if (jp_strv(json_get(doc, "Env"), &p, false, CO_MAX_ITEMS, CO_MAX_STR, &co->env, err) < 0)
		return -1;
	for (size_t i = 0; co->env && co->env[i]; i++) {
		const char *eq = strchr(co->env[i], '=');
		if (!eq || eq == co->env[i]) {
			struct jpath ip;
			jpath_index(&ip, &p, i);
			return berr_set(err, 0, "%s: expected NAME=VALUE", ip.s);
		}
	}
	jpath_key(&p, root, "Cmd");
	if (jp_strv(json_get(doc, "Cmd"), &p, true, CO_MAX_ITEMS, CO_MAX_STR, &co->cmd, err) < 0)
		return -1;
	jpath_key(&p, root, "Entrypoint");
	if (jp_strv(json_get(doc, "Entrypoint"), &p, true, CO_MAX_ITEMS, CO_MAX_STR,
		    &co->entrypoint, err) < 0)
		return -1;
	const char *wd = NULL, *user = NULL, *host = NULL;
	if (jp_str(doc, "WorkingDir", root, false, CO_MAX_PATH, &wd, err) < 0 ||
	    jp_str(doc, "User", root, false, 64, &user, err) < 0 ||
	    jp_str(doc, "Hostname", root, false, 63, &host, err) < 0)
		return -1;
	if (wd && *wd && !path_ok(wd)) {
		jpath_key(&p, root, "WorkingDir");
		return berr_set(err, 0, "%s: expected an absolute path", p.s);
	}
	if (user && *user && !chars_valid(user, "_.:-", 64)) {
		jpath_key(&p, root, "User");
		return berr_set(err, 0, "%s: expected USER[:GROUP] (names or numbers)", p.s);
	}
	if (host && *host && !hostname_valid(host, 63)) {
		jpath_key(&p, root, "Hostname");
		return berr_set(err, 0, "%s: not a host name", p.s);
	}
	if ((wd && *wd && !(co->working_dir = strdup(wd))) ||
	    (user && *user && !(co->user = strdup(user))) ||
	    (host && *host && !(co->hostname = strdup(host))))
		return berr_set(err, ENOMEM, "createOptions");
	yajl_val labels;
	if (jp_obj(doc, "Labels", root, false, &labels, err) < 0)
		return -1;
	if (labels) {
		size_t n = labels->u.object.len;
		jpath_key(&p, root, "Labels");
		if (n > CO_MAX_ITEMS)
			return berr_set(err, 0, "%s: more than %d labels", p.s, CO_MAX_ITEMS);
		co->labels = calloc(n + 1, sizeof(char *));
		if (!co->labels)
			return berr_set(err, ENOMEM, "createOptions");
		for (size_t i = 0; i < n; i++) {
			const char *v = json_str(labels->u.object.values[i]);
			struct jpath lp;
			jpath_key(&lp, &p, labels->u.object.keys[i]);
			if (!v || strlen(v) > CO_MAX_STR)
				return berr_set(err, 0, "%s: expected a string", lp.s);
			if (asprintf(&co->labels[i], "%s=%s", labels->u.object.keys[i], v) < 0) {
				co->labels[i] = NULL;
				return berr_set(err, ENOMEM, "createOptions");
			}
		}
	}
	int64_t stop = -1;
	if (jp_int(doc, "StopTimeout", root, false, 0, 3600, &stop, err) < 0)
		return -1;
	co->stop_timeout = (int)stop;
	yajl_val health;
	if (jp_obj(doc, "Healthcheck", root, false, &health, err) < 0)
		return -1;
	jpath_key(&p, root, "Healthcheck");
	if (health && healthcheck_parse(health, &p, &co->health, err) < 0)
		return -1;
	yajl_val hc;
	if (jp_obj(doc, "HostConfig", root, false, &hc, err) < 0)
		return -1;
	jpath_key(&p, root, "HostConfig");
	if (hc && parse_host_config(co, hc, &p, err) < 0)
		return -1;
	return net_options_parse(co, doc, hc, root, &p, err);
}

int create_options_parse(const char *json, size_t len, const struct jpath *path,
			 struct create_options *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	out->stop_timeout = -1;
	if (len == 0)
		return 0;
	cleanup_yajl yajl_val doc = NULL;
	if (json_parse(json, len, CREATE_OPTIONS_MAX, path->s, &doc, err) < 0)
		return -1;
	if (!YAJL_IS_OBJECT(doc))
		return berr_set(err, 0, "%s: expected a JSON object", path->s);
	/* Paths inside the options read as "<where the string is>: $.HostConfig..." */
	struct jpath root;
	snprintf(root.s, sizeof(root.s), "%.400s: $", path->s);
	int rc = parse_top(out, doc, &root, err);
	if (rc < 0)
		create_options_clear(out);
	return rc;
}

static char **concat_argv(char *const *a, char *const *b)
{
	size_t na = strv_len(a), nb = strv_len(b);
	cleanup_strv char **v = calloc(na + nb + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < na + nb; i++)
		if (!(v[i] = strdup(i < na ? a[i] : b[i - na])))
			return NULL;
	return take_ptr(v);
}

int create_options_apply(const struct create_options *co, char *const *image_entrypoint,
			 char *const *image_cmd, struct instance_spec *spec, struct berr *err)
{
	/* Docker's rule: an Entrypoint in the options replaces the image's and
	 * drops the image's Cmd; a Cmd alone replaces only the image's Cmd. */
	char *const *ep = co->entrypoint ? co->entrypoint : image_entrypoint;
	char *const *cmd = co->entrypoint ? co->cmd : (co->cmd ? co->cmd : image_cmd);
	spec->args = concat_argv(ep, cmd);
	if (!spec->args)
		return berr_set(err, ENOMEM, "command line");
	if (!spec->args[0])
		return berr_set(
		    err, 0,
		    "no command: neither the image nor createOptions set Entrypoint or Cmd");
	bool ok = true;
	if (co->working_dir)
		spec->cwd = dup_or_null(co->working_dir, &ok);
	if (co->user)
		spec->user = dup_or_null(co->user, &ok);
	if (co->hostname)
		spec->hostname = dup_or_null(co->hostname, &ok);
	if ((spec->binds = bind_mounts_dup(co->binds, co->n_binds, &ok)))
		spec->n_binds = co->n_binds;
	if ((spec->devices = device_rules_dup(co->devices, co->n_devices, &ok)))
		spec->n_devices = co->n_devices;
	spec->network = co->net.choice == NETWORK_HOST ? NET_HOST : NET_NONE;
	spec->readonly_rootfs = co->readonly_rootfs;
	spec->privileged = co->privileged;
	spec->memory = co->memory;
	spec->memory_swap = co->memory_swap;
	spec->pids_limit = co->pids_limit;
	spec->cpu_shares = co->cpu_shares;
	if (co->nano_cpus) {
		spec->cpu_period_us = CPU_PERIOD_DEFAULT;
		spec->cpu_quota_us = co->nano_cpus * CPU_PERIOD_DEFAULT / 1000000000LL;
		if (spec->cpu_quota_us < 1000)
			spec->cpu_quota_us = 1000; /* the kernel's minimum quota */
	} else if (co->cpu_quota > 0) {
		spec->cpu_quota_us = co->cpu_quota;
		spec->cpu_period_us = co->cpu_period ? co->cpu_period : CPU_PERIOD_DEFAULT;
	}
	spec->cap_add = strv_dup(co->cap_add, &ok);
	spec->cap_drop = strv_dup(co->cap_drop, &ok);
	if (!ok)
		return berr_set(err, ENOMEM, "createOptions");
	return 0;
}
