/* The twin of every deployed module, kept in memory and written to
 * <state_dir>/twins/<module>.json (atomically) after each change, so twins
 * survive hub and device restarts. A module deployed again with a new
 * generation id is a new identity and starts a new twin. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "hub/broker.h"

static int twin_path(struct broker *b, const char *module, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/twins/%s.json", b->cfg->state_dir, module);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

bool twins_from_cloud(const struct broker *b)
{
	return b->cfg && b->cfg->upstream.url && b->cfg->upstream.twins;
}

struct module_twin *twins_find(struct broker *b, const char *module)
{
	for (struct module_twin *mt = b->twins; mt; mt = mt->next)
		if (!strcmp(mt->module, module))
			return mt;
	return NULL;
}

struct twin *twins_get(struct broker *b, const char *module)
{
	struct module_twin *mt = twins_find(b, module);
	return mt ? mt->twin : NULL;
}

/* <module>.cloud.json: {"generation_id":"..","synced":true,"base":{..}} */
static void persist_cloud(struct broker *b, struct module_twin *mt)
{
	char path[4096];
	int n =
	    snprintf(path, sizeof(path), "%s/twins/%s.cloud.json", b->cfg->state_dir, mt->module);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	struct strbuf out = STRBUF_INIT;
	yajl_gen g = json_gen_new(false);
	bool built = g && yajl_gen_map_open(g) == yajl_gen_status_ok &&
		     json_gen_key_str(g, "generation_id", twin_generation_id(mt->twin)) == 0 &&
		     json_gen_key_bool(g, "synced", mt->synced) == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	cleanup_free char *gen = json_gen_done_if(g, built, NULL);
	struct berr err;
	/* The base is JSON already: spliced in before the closing brace. */
	if (!gen || strbuf_printf(&out, "%.*s,\"base\":%s}", (int)strlen(gen) - 1, gen,
				  mt->base ? mt->base : "{}") < 0)
		log_error("twin of %s: out of memory; its cloud state is not saved", mt->module);
	else if (fs_write_file_atomic(path, out.buf, out.len, 0600, &err) < 0)
		log_error("twin of %s: cloud state not saved: %s", mt->module, err.msg);
	strbuf_release(&out);
}

static void load_cloud(struct broker *b, struct module_twin *mt)
{
	char path[4096];
	mt->synced = false;
	free(mt->base);
	mt->base = NULL;
	int n =
	    snprintf(path, sizeof(path), "%s/twins/%s.cloud.json", b->cfg->state_dir, mt->module);
	cleanup_free char *json = NULL;
	size_t len;
	struct berr err;
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    fs_read_file(path, TWIN_FILE_MAX, &json, &len, &err) < 0)
		return;
	cleanup_yajl yajl_val v = NULL;
	if (json_parse(json, len, TWIN_FILE_MAX, path, &v, &err) < 0) {
		log_warn("twin of %s: %s; its cloud state starts again", mt->module, err.msg);
		return;
	}
	const char *gen = json_str(json_get(v, "generation_id"));
	yajl_val base = json_get(v, "base");
	if (!gen || strcmp(gen, twin_generation_id(mt->twin)) || !base || !YAJL_IS_OBJECT(base))
		return;
	yajl_gen g = json_gen_new(false);
	if (g && json_gen_val(g, base) == 0)
		mt->base = json_gen_finish(g, NULL);
	if (g)
		yajl_gen_free(g);
	mt->synced = YAJL_IS_TRUE(json_get(v, "synced"));
}

static void persist(struct broker *b, struct module_twin *mt)
{
	char path[4096];
	mt->dirty = false;
	if (!mt->twin || twin_path(b, mt->module, path, sizeof(path)) < 0)
		return;
	if (twins_from_cloud(b))
		persist_cloud(b, mt);
	size_t len;
	cleanup_free char *json = twin_save(mt->twin, &len);
	struct berr err;
	if (!json)
		log_error("twin of %s: out of memory; not saved", mt->module);
	else if (fs_write_file_atomic(path, json, len, 0600, &err) < 0)
		log_error("twin of %s not saved: %s", mt->module, err.msg);
	else
		log_debug(
		    "twin of %s saved (desired version %" PRId64 ", reported version %" PRId64 ")",
		    mt->module, twin_desired_version(mt->twin), twin_reported_version(mt->twin));
}

void twins_changed(struct broker *b, const char *module)
{
	struct module_twin *mt = twins_find(b, module);
	if (mt) {
		mt->dirty = true;
		b->twins_dirty = true;
	}
}

void twins_flush(struct broker *b)
{
	if (!b->twins_dirty)
		return;
	b->twins_dirty = false;
	for (struct module_twin *mt = b->twins; mt; mt = mt->next)
		if (mt->dirty)
			persist(b, mt);
}

/* A saved twin that cannot be read is kept beside as <file>.bad, so the new
 * twin written in its place does not destroy it. */
static void set_aside(const char *module, const char *path, const char *why)
{
	char bad[4096 + 8];
	snprintf(bad, sizeof(bad), "%s.bad", path);
	if (rename(path, bad) < 0)
		log_warn("twin of %s: %s; starting a new one (cannot keep the old file as %s: %s)",
			 module, why, bad, strerror(errno));
	else
		log_warn("twin of %s: %s; kept as %s, starting a new one", module, why, bad);
}

/* The saved twin when it belongs to this generation of the module. */
static struct twin *load_saved(struct broker *b, const struct hub_module *m)
{
	char path[4096];
	if (twin_path(b, m->name, path, sizeof(path)) < 0)
		return NULL;
	cleanup_free char *json = NULL;
	size_t len;
	struct berr err;
	if (fs_read_file(path, TWIN_FILE_MAX, &json, &len, &err) < 0) {
		if (err.code != ENOENT)
			set_aside(m->name, path, err.msg);
		return NULL;
	}
	struct twin *t;
	if (twin_load(json, len, path, &t, &err) < 0) {
		set_aside(m->name, path, err.msg);
		return NULL;
	}
	if (strcmp(twin_generation_id(t), m->generation_id)) {
		log_info("twin of %s: generation %s replaced by %s; starting a new twin", m->name,
			 twin_generation_id(t), m->generation_id);
		twin_free(t);
		return NULL;
	}
	return t;
}

void twins_send_desired(struct broker *b, const char *module, struct twin *t, const char *patch)
{
	char client_id[2 * HUB_NAME_MAX + 2], topic[128];
	snprintf(client_id, sizeof(client_id), "%s/%s", b->cfg->device_id, module);
	snprintf(topic, sizeof(topic), "$iothub/twin/PATCH/properties/desired/?$version=%" PRId64,
		 twin_desired_version(t));
	struct session *s = session_find(b, client_id);
	if (s && session_enqueue(s, topic, patch, strlen(patch), 1) == 0)
		log_info("twin of %s: desired properties version %" PRId64 " sent", module,
			 twin_desired_version(t));
}

int twins_sync(struct broker *b, bool notify, struct berr *err)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/twins", b->cfg->state_dir);
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return berr_wrap(err, "twins");
	for (size_t i = 0; i < b->cfg->n_modules; i++) {
		const struct hub_module *m = &b->cfg->modules[i];
		struct module_twin *mt = b->twins;
		while (mt && strcmp(mt->module, m->name))
			mt = mt->next;
		if (mt && strcmp(twin_generation_id(mt->twin), m->generation_id)) {
			twin_free(mt->twin);
			mt->twin = NULL;
		}
		if (!mt) {
			mt = calloc(1, sizeof(*mt));
			if (!mt || !(mt->module = strdup(m->name))) {
				free(mt);
				return berr_set(err, ENOMEM, "twin of %s", m->name);
			}
			mt->next = b->twins;
			b->twins = mt;
		}
		bool fresh = false;
		if (!mt->twin) {
			if (!(mt->twin = load_saved(b, m))) {
				if (twin_new(m->generation_id, m->desired, b->now_ms, &mt->twin,
					     err) < 0)
					return berr_wrap(err, "twin of %s", m->name);
				fresh = true;
			}
			load_cloud(b, mt);
		}
		char *patch = NULL;
		/* The cloud's twins get their desired properties from the cloud. */
		bool own = !twins_from_cloud(b);
		if (!fresh && own &&
		    twin_set_desired(mt->twin, m->desired, b->now_ms, &patch, err) < 0) {
			log_error("twin of %s: desired properties from the config: %s", m->name,
				  err->msg);
			continue;
		}
		if (fresh || patch)
			persist(b, mt);
		if (patch && notify)
			twins_send_desired(b, m->name, mt->twin, patch);
		free(patch);
	}
	/* Twins of modules no longer deployed leave memory; their files stay
	 * for a redeployment of the same generation. */
	struct module_twin **mp = &b->twins;
	while (*mp) {
		struct module_twin *mt = *mp;
		if (hub_config_module(b->cfg, mt->module)) {
			mp = &mt->next;
			continue;
		}
		*mp = mt->next;
		if (mt->dirty)
			persist(b, mt);
		twin_free(mt->twin);
		free(mt->base);
		free(mt->module);
		free(mt);
	}
	return 0;
}

void twins_free(struct broker *b)
{
	twins_flush(b);
	while (b->twins) {
		struct module_twin *mt = b->twins;
		b->twins = mt->next;
		twin_free(mt->twin);
		free(mt->base);
		free(mt->module);
		free(mt);
	}
}
