#include "hub/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "hub/store.h"
#include "hub/twin.h"

bool hub_name_valid(const char *name)
{
	size_t len = strnlen(name, HUB_NAME_MAX + 1);
	if (len == 0 || len > HUB_NAME_MAX || !fs_name_is_plain(name))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '+' || *p == '#' || *p == '/' || *p == '?' ||
		    *p == '&' || *p == '=')
			return false;
	return true;
}

bool hub_name_copy(const char *s, size_t len, char *out, size_t cap)
{
	if (len == 0 || len >= cap)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return hub_name_valid(out);
}

void hub_config_free(struct hub_config *c)
{
	if (!c)
		return;
	free(c->routes);
	free(c->modules);
	yajl_tree_free(c->tree);
	free(c);
}

static int get_size(yajl_val obj, const char *key, long long min, long long max, long long dflt,
		    long long *out, struct berr *err)
{
	*out = dflt;
	if (json_get_int(obj, key, "config", false, out, err) < 0)
		return -1;
	if (*out < min || *out > max)
		return berr_set(err, 0, "config.%s: %lld is outside %lld..%lld", key, *out, min,
				max);
	return 0;
}

static int parse_routes(struct hub_config *c, yajl_val routes, struct berr *err)
{
	if (!routes)
		return 0;
	size_t n = routes->u.object.len;
	c->routes = calloc(n ? n : 1, sizeof(*c->routes));
	if (!c->routes)
		return berr_set(err, ENOMEM, "config.routes");
	for (size_t i = 0; i < n; i++) {
		const char *name = routes->u.object.keys[i];
		yajl_val v = routes->u.object.values[i];
		struct route_def *d = &c->routes[c->n_routes++];
		d->name = name;
		d->priority = ROUTE_DEFAULT_PRIORITY;
		d->ttl_secs = 0;
		if (YAJL_IS_STRING(v)) {
			d->text = v->u.string;
			continue;
		}
		if (!YAJL_IS_OBJECT(v))
			return berr_set(err, 0, "config.routes.%s: expected a string or an object",
					name);
		char path[256];
		snprintf(path, sizeof(path), "config.routes.%.200s", name);
		if (json_get_str(v, "route", path, true, &d->text, err) < 0)
			return -1;
		long long prio = -1, ttl = 0;
		if (json_get_int(v, "priority", path, false, &prio, err) < 0 ||
		    json_get_int(v, "timeToLiveSecs", path, false, &ttl, err) < 0)
			return -1;
		if (json_get(v, "priority")) {
			if (prio < 0 || prio > 9)
				return berr_set(err, 0, "%s.priority: %lld is not 0-9", path, prio);
			d->priority = (uint32_t)prio;
		}
		if (ttl < 0 || ttl > UINT32_MAX)
			return berr_set(err, 0, "%s.timeToLiveSecs: %lld is out of range", path,
					ttl);
		d->ttl_secs = (uint32_t)ttl;
	}
	return 0;
}

/* Bytes of v as compact JSON, or SIZE_MAX when it cannot be written. */
static size_t json_size(yajl_val v)
{
	yajl_gen g = json_gen_new(false);
	size_t len = SIZE_MAX;
	const unsigned char *buf;
	if (g && (json_gen_val(g, v) < 0 || yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok))
		len = SIZE_MAX;
	if (g)
		yajl_gen_free(g);
	return len;
}

static int parse_modules(struct hub_config *c, yajl_val modules, struct berr *err)
{
	if (!modules)
		return 0;
	size_t n = modules->u.object.len;
	c->modules = calloc(n ? n : 1, sizeof(*c->modules));
	if (!c->modules)
		return berr_set(err, ENOMEM, "config.modules");
	for (size_t i = 0; i < n; i++) {
		const char *name = modules->u.object.keys[i];
		yajl_val v = modules->u.object.values[i];
		char path[256];
		snprintf(path, sizeof(path), "config.modules.%.200s", name);
		/* One unusable name must not keep every other module off the hub. */
		if (!hub_name_valid(name)) {
			log_warn("%s: not a valid module name (it cannot connect)", path);
			continue;
		}
		if (!YAJL_IS_OBJECT(v))
			return berr_set(err, 0, "%s: expected an object", path);
		struct hub_module *m = &c->modules[c->n_modules++];
		m->name = name;
		if (json_get_str(v, "generation_id", path, true, &m->generation_id, err) < 0)
			return -1;
		yajl_val desired = json_get(v, "desired");
		if (desired && !YAJL_IS_NULL(desired) &&
		    json_get_obj(v, "desired", path, false, &m->desired, err) < 0)
			return -1;
		/* As IoT Hub: a twin's desired properties are at most 32 KiB. */
		size_t size = m->desired ? json_size(m->desired) : 0;
		if (size > TWIN_SECTION_MAX)
			return berr_set(err, 0, "%s.desired: %zu bytes is over the limit of %d",
					path, size, TWIN_SECTION_MAX);
		m->identity_ready = true;
		if (json_get_bool(v, "identity_ready", path, false, &m->identity_ready, err) < 0)
			return -1;
		if (sas_derive_module_key(c->device_key, name, m->generation_id, m->key, err) < 0)
			return berr_wrap(err, "%s", path);
	}
	return 0;
}

static int parse_upstream(struct hub_config *c, yajl_val up, struct berr *err)
{
	struct hub_upstream_config *u = &c->upstream;
	static const struct {
		const char *key;
		long long min, max, dflt;
		size_t offset;
	} numbers[] = {
	    {"token_ttl_secs", 10, 365LL * 24 * 3600, 3600,
	     offsetof(struct hub_upstream_config, token_ttl_secs)},
	    {"backoff_min_ms", 10, 3600 * 1000, 1000,
	     offsetof(struct hub_upstream_config, backoff_min_ms)},
	    {"backoff_max_ms", 10, 3600 * 1000, 60000,
	     offsetof(struct hub_upstream_config, backoff_max_ms)},
	    {"window", 1, 1000, 64, offsetof(struct hub_upstream_config, window)},
	    {"idle_secs", 1, 365LL * 24 * 3600, 3600,
	     offsetof(struct hub_upstream_config, idle_secs)},
	    {"keepalive_secs", 5, 1177, 60, offsetof(struct hub_upstream_config, keepalive_secs)},
	    {"method_timeout_ms", 100, 300000, 30000,
	     offsetof(struct hub_upstream_config, method_timeout_ms)},
	};
	if (!up)
		return 0;
	if (json_get_str(up, "url", "config.upstream", true, &u->url, err) < 0 ||
	    json_get_str(up, "ca_file", "config.upstream", false, &u->ca_file, err) < 0 ||
	    json_get_bool(up, "twins", "config.upstream", false, &u->twins, err) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(numbers); i++) {
		long long v = numbers[i].dflt;
		if (json_get_int(up, numbers[i].key, "config.upstream", false, &v, err) < 0)
			return -1;
		if (v < numbers[i].min || v > numbers[i].max)
			return berr_set(err, 0, "config.upstream.%s: %lld is outside %lld..%lld",
					numbers[i].key, v, numbers[i].min, numbers[i].max);
		*(uint32_t *)((char *)u + numbers[i].offset) = (uint32_t)v;
	}
	if (u->backoff_max_ms < u->backoff_min_ms)
		return berr_set(err, 0, "config.upstream: backoff_max_ms is below backoff_min_ms");
	return 0;
}

static int parse_addresses(yajl_val gw, const char *key, const char **out, size_t *n,
			   struct berr *err)
{
	yajl_val a;
	if (json_get_array(gw, key, "config.gateway", false, &a, err) < 0)
		return -1;
	size_t len = a ? a->u.array.len : 0;
	if (len > HUB_GATEWAY_LISTEN_MAX)
		return berr_set(err, 0, "config.gateway.%s: more than %d addresses", key,
				HUB_GATEWAY_LISTEN_MAX);
	for (size_t i = 0; i < len; i++) {
		const char *s = json_str(a->u.array.values[i]);
		if (!s || !strchr(s, ':') || strlen(s) > 64)
			return berr_set(err, 0, "config.gateway.%s[%zu]: expected \"host:port\"",
					key, i);
		out[(*n)++] = s;
	}
	return 0;
}

/* "gateway": {"cert", "key", "mqtt": [...], "https": [...]} */
static int parse_gateway(struct hub_config *c, struct berr *err)
{
	yajl_val gw;
	if (json_get_obj(c->tree, "gateway", "config", false, &gw, err) < 0)
		return -1;
	if (!gw)
		return 0;
	if (json_get_str(gw, "cert", "config.gateway", true, &c->gateway_cert, err) < 0 ||
	    json_get_str(gw, "key", "config.gateway", true, &c->gateway_key, err) < 0 ||
	    parse_addresses(gw, "mqtt", c->gateway_mqtt, &c->n_gateway_mqtt, err) < 0 ||
	    parse_addresses(gw, "https", c->gateway_https, &c->n_gateway_https, err) < 0)
		return -1;
	return 0;
}

int hub_config_parse(const char *text, size_t len, const char *what, struct hub_config **out,
		     struct berr *err)
{
	struct hub_config *c = calloc(1, sizeof(*c));
	if (!c)
		return berr_set(err, ENOMEM, "%s", what);
	if (json_parse(text, len, HUB_CONFIG_MAX, what, &c->tree, err) < 0) {
		free(c);
		return -1;
	}
	static const struct {
		const char *key;
		bool required;
		size_t offset;
	} strings[] = {
	    {"device_id", true, offsetof(struct hub_config, device_id)},
	    {"iothub_hostname", true, offsetof(struct hub_config, hostname)},
	    {"device_key", true, offsetof(struct hub_config, device_key)},
	    {"socket", false, offsetof(struct hub_config, socket_path)},
	    {"control_socket", false, offsetof(struct hub_config, control_path)},
	    {"state_dir", true, offsetof(struct hub_config, state_dir)},
	    {"listen_tcp", false, offsetof(struct hub_config, listen_tcp)},
	    {"tls_cert", false, offsetof(struct hub_config, tls_cert)},
	    {"tls_key", false, offsetof(struct hub_config, tls_key)},
	};
	yajl_val t = c->tree, routes = NULL, modules = NULL, up = NULL;
	long long max_packet, ttl, store_max, store_limit, min_free;
	const char *full = NULL;
	int rc = YAJL_IS_OBJECT(t) ? 0 : berr_set(err, 0, "expected a JSON object");
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(strings); i++)
		rc = json_get_str(t, strings[i].key, "config", strings[i].required,
				  (const char **)((char *)c + strings[i].offset), err);
	if (rc == 0)
		rc = json_get_obj(t, "routes", "config", false, &routes, err);
	if (rc == 0)
		rc = json_get_obj(t, "modules", "config", false, &modules, err);
	if (rc == 0)
		rc = json_get_obj(t, "upstream", "config", false, &up, err);
	if (rc == 0)
		rc = parse_upstream(c, up, err);
	if (rc == 0)
		rc = json_get_bool(t, "notify_parent", "config", false, &c->notify_parent, err);
	if (rc == 0)
		rc = get_size(t, "max_packet", 1024, HUB_MAX_PACKET_LIMIT, HUB_DEFAULT_MAX_PACKET,
			      &max_packet, err);
	if (rc == 0)
		rc =
		    get_size(t, "default_ttl_secs", 1, UINT32_MAX, HUB_DEFAULT_TTL_SECS, &ttl, err);
	/* 0: no bound but the free-space floor. */
	if (rc == 0)
		rc = get_size(t, "store_max_bytes", 0, (long long)1 << 50, 0, &store_max, err);
	if (rc == 0)
		rc = get_size(t, "store_limits_max_bytes", 0, (long long)1 << 50, 0, &store_limit,
			      err);
	if (rc == 0)
		rc = get_size(t, "min_free_percent", 0, 90, HUB_DEFAULT_MIN_FREE_PERCENT, &min_free,
			      err);
	if (rc == 0)
		rc = json_get_str(t, "store_full", "config", false, &full, err);
	if (rc == 0 && full && strcmp(full, "reject") && strcmp(full, "drop-oldest"))
		rc = berr_set(err, 0, "config.store_full: \"%.64s\" is not reject or drop-oldest",
			      full);
	if (rc == 0 &&
	    ((store_max && store_max < 64 * 1024) || (store_limit && store_limit < 64 * 1024)))
		rc = berr_set(err, 0, "config: a store bound under 64 KiB cannot hold a message");
	if (rc == 0 && !hub_name_valid(c->device_id))
		rc = berr_set(err, 0, "config.device_id: \"%.64s\" is not a valid device id",
			      c->device_id);
	if (rc == 0 && (c->tls_cert != NULL) != (c->tls_key != NULL))
		rc = berr_set(err, 0, "config: tls_cert and tls_key go together");
	if (rc == 0) {
		c->max_packet = (size_t)max_packet;
		c->default_ttl_secs = (uint32_t)ttl;
		c->store_max_bytes = (size_t)store_max;
		c->store_limit_bytes = (size_t)store_limit;
		c->min_free_percent = (unsigned)min_free;
		c->store_full = full && !strcmp(full, "drop-oldest") ? STORE_FULL_DROP_OLDEST
								     : STORE_FULL_REJECT;
		rc = parse_routes(c, routes, err);
	}
	if (rc == 0)
		rc = parse_modules(c, modules, err);
	if (rc == 0)
		rc = parse_gateway(c, err);
	if (rc < 0) {
		hub_config_free(c);
		return berr_wrap(err, "%s", what);
	}
	*out = c;
	return 0;
}

int hub_config_load(const char *path, struct hub_config **out, struct berr *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, HUB_CONFIG_MAX, &text, &len, err) < 0)
		return berr_wrap(err, "hub config");
	return hub_config_parse(text, len, path, out, err);
}

size_t hub_config_store_bound(const struct hub_config *c)
{
	size_t a = c->store_max_bytes, b = c->store_limit_bytes;
	return a && b ? (a < b ? a : b) : a ? a : b;
}

const struct hub_module *hub_config_module(const struct hub_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_modules; i++)
		if (!strcmp(c->modules[i].name, name))
			return &c->modules[i];
	return NULL;
}
