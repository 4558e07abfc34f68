/* What the daemon keeps across its own restarts, under <root>/agent/:
 *   modules.json       one record per managed module (generation id, the
 *                      config the instance was made from, restart count, times)
 *   deployment.json    the last applied deployment, as it was given
 *   deployment.source  where it came from, and the hash of the deployment
 *                      file when that was last applied
 * All written atomically, so a daemon killed at any point finds either the
 * old or the new file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#define RECORDS_MAX_BYTES (1024 * 1024)

static void agent_path(struct daemon *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/agent/%s", d->root, name);
}

int daemon_state_save(struct daemon *d, const char *name, yajl_gen g, const char *what,
		      struct berr *err)
{
	char path[4200];
	if (snprintf(path, sizeof(path), "%s/%s", d->root, name) >= (int)sizeof(path)) {
		yajl_gen_free(g);
		return berr_set(err, ENAMETOOLONG, "%s", what);
	}
	return json_gen_write_file(g, path, 0600, what, err);
}

int daemon_state_load(struct daemon *d, const char *name, size_t max, yajl_val *doc,
		      struct berr *err)
{
	*doc = NULL;
	char path[4200];
	if (snprintf(path, sizeof(path), "%s/%s", d->root, name) >= (int)sizeof(path))
		return berr_set(err, ENAMETOOLONG, "%s/%s", d->root, name);
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	return json_parse_file(path, max, doc, err);
}

static const char *status_str(enum runtime_status s)
{
	return runtime_status_name(s);
}

static enum runtime_status status_from(const char *s)
{
	static const enum runtime_status all[] = {RT_RUNNING, RT_STOPPED, RT_BACKOFF, RT_FAILED,
						  RT_UNHEALTHY};
	for (size_t i = 0; s && i < ARRAY_SIZE(all); i++)
		if (!strcmp(s, runtime_status_name(all[i])))
			return all[i];
	return RT_UNKNOWN;
}

int records_save(struct daemon *d, struct berr *err)
{
	yajl_gen g = json_gen_new(true);
	if (!g)
		return berr_set(err, ENOMEM, "module records");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "boot_id", d->boot_id);
	json_gen_str(g, "modules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		yajl_gen_map_open(g);
		json_gen_key_str(g, "name", m->name);
		json_gen_key_str(g, "generation_id", m->generation_id);
		json_gen_key_str(g, "config_hash", m->config_hash);
		json_gen_key_str(g, "image_digest", m->image_digest);
		json_gen_key_str(g, "image", m->image);
		json_gen_key_bool(g, "has_instance", m->has_instance);
		json_gen_key_bool(g, "done", m->done);
		json_gen_key_str(g, "status", status_str(m->status));
		json_gen_key_int(g, "exit_code", m->exit_code);
		json_gen_key_int(g, "restart_count", m->restart_count);
		json_gen_key_int(g, "last_start_ms", m->last_start_ms);
		json_gen_key_int(g, "last_exit_ms", m->last_exit_ms);
		json_gen_key_int(g, "last_restart_ms", m->last_restart_ms);
		/* The backoff deadline goes to disk on the wall clock: the boot
		 * clock starts again with the next boot. */
		json_gen_key_int(g, "next_start_ms",
				 m->next_start_boot ? wall_ms() + (m->next_start_boot - boot_ms())
						    : 0);
		json_gen_key_str(g, "description", m->description);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return daemon_state_save(d, "agent/modules.json", g, "module records", err);
}

static void copy_str(yajl_val obj, const char *key, char *out, size_t cap)
{
	const char *s = json_str(json_get(obj, key));
	snprintf(out, cap, "%s", s ? s : "");
}

/* A field of a record; 0 when it is missing or damaged. */
static int64_t field(yajl_val r, const char *key)
{
	int64_t v = 0;
	struct berr err;
	return json_get_i64(r, key, "record", false, &v, &err) < 0 ? 0 : v;
}

int records_load(struct daemon *d, struct berr *err)
{
	cleanup_yajl yajl_val doc = NULL;
	if (daemon_state_load(d, "agent/modules.json", RECORDS_MAX_BYTES, &doc, err) < 0)
		return -1;
	if (!doc)
		return 0;
	copy_str(doc, "boot_id", d->records_boot_id, sizeof(d->records_boot_id));
	yajl_val arr = json_get(doc, "modules");
	for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
		yajl_val r = arr->u.array.values[i];
		const char *name = json_str(json_get(r, "name"));
		if (!name || !module_name_valid(name) || module_find(d, name))
			continue; /* a damaged entry: the instance, if any, stays untouched */
		struct module_rt *m = module_add(d, name);
		if (!m)
			return berr_set(err, ENOMEM, "module records");
		copy_str(r, "generation_id", m->generation_id, sizeof(m->generation_id));
		if (!m->generation_id[0])
			generation_id_new(m->generation_id);
		copy_str(r, "config_hash", m->config_hash, sizeof(m->config_hash));
		copy_str(r, "image_digest", m->image_digest, sizeof(m->image_digest));
		copy_str(r, "image", m->image, sizeof(m->image));
		copy_str(r, "description", m->description, sizeof(m->description));
		m->has_instance = YAJL_IS_TRUE(json_get(r, "has_instance"));
		m->done = YAJL_IS_TRUE(json_get(r, "done"));
		m->status = status_from(json_str(json_get(r, "status")));
		m->exit_code = (int)field(r, "exit_code");
		m->restart_count = (unsigned)field(r, "restart_count");
		m->last_start_ms = field(r, "last_start_ms");
		m->last_exit_ms = field(r, "last_exit_ms");
		m->last_restart_ms = field(r, "last_restart_ms");
		int64_t next = field(r, "next_start_ms"), wait = next - wall_ms();
		if (next)
			m->next_start_boot = boot_ms() + (wait < 0		  ? 0
							  : wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
										  : wait);
		m->started_boot = boot_from_wall(m->last_start_ms);
		m->exited_boot = boot_from_wall(m->last_exit_ms);
	}
	return 0;
}

void records_save_or_log(struct daemon *d)
{
	struct berr err;
	if (records_save(d, &err) < 0)
		log_error("saving module records: %s", err.msg);
}

void deployment_file_hash(const char *text, size_t len, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)fnv1a(FNV1A_INIT, text, len));
}

int deployment_record(struct daemon *d, const char *text, size_t len, const char *source,
		      struct berr *err)
{
	char path[4200], src[4200];
	agent_path(d, "deployment.json", path, sizeof(path));
	agent_path(d, "deployment.source", src, sizeof(src));
	if (fs_write_file_atomic(path, text, len, 0600, err) < 0)
		return -1;
	if (strcmp(source, "file"))
		return 0;
	/* The deployment file's hash when it was last applied: a daemon started
	 * later applies the file again only if it changed since. */
	char line[64], hash[17];
	deployment_file_hash(text, len, hash);
	int n = snprintf(line, sizeof(line), "file %s\n", hash);
	return fs_write_file_atomic(src, line, (size_t)n, 0600, err);
}

void deployment_recorded(struct daemon *d, char **text, size_t *len, char file_hash[17])
{
	char path[4200], src[4200];
	agent_path(d, "deployment.json", path, sizeof(path));
	agent_path(d, "deployment.source", src, sizeof(src));
	cleanup_free char *source = NULL;
	size_t source_len = 0;
	struct berr e;
	file_hash[0] = '\0';
	if (fs_read_file(path, DEPLOYMENT_MAX_BYTES, text, len, &e) < 0)
		*text = NULL;
	if (fs_read_file(src, 256, &source, &source_len, &e) == 0 &&
	    sscanf(source, "file %16s", file_hash) != 1)
		file_hash[0] = '\0';
}
