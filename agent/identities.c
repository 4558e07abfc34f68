/* The daemon's side of module identities in IoT Hub (identities.h): which
 * identities should exist with which keys, which are known to, and a
 * `berth identities` child to close the gap, retried with backoff from 1 s
 * to 60 s. Local operation never waits for it: modules start, tokens are
 * made and the hub routes whatever IoT Hub answers; only the hub's
 * connection upstream for an identity waits until that identity is there
 * (identity_ready in the hub config).
 *
 * <root>/agent/identities.json keeps the identities berth put upstream and
 * the generation id their keys were derived from, so a restarted daemon
 * knows what to delete and which identities are ready before it has
 * checked them again (it checks each once per start). */
#include "agent/identities.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#define RETRY_MIN_MS	 1000
#define RETRY_MAX_MS	 60000
#define STATE_FILE	 "identities.json"
#define RESULTS_MAX	 (1024 * 1024)
#define IDENTITY_GEN_MAX 64

static const char *const system_identities[] = {"$edgeAgent", "$edgeHub"};

struct known {
	char name[IDENTITY_NAME_MAX + 1];
	char gen[IDENTITY_GEN_MAX + 1]; /* the keys upstream were derived from it */
	bool checked;			/* confirmed by this daemon */
};

struct wanted {
	const char *name;
	const char *gen;
};

struct identities {
	struct known *known;
	size_t n_known;
	bool loaded;
	pid_t pid;
	int out_fd;
	struct known *job; /* what the running child puts (name, generation) */
	size_t n_job;
	int64_t next_boot;
	unsigned failures;
	char last_error[512];
	int64_t last_ok_ms;
	const struct deployment *seen_dep; /* the deployment of the last round */
	bool nothing_to_do;		   /* the last plan was empty */
};

static bool enabled(struct daemon *d)
{
	return d->cfg->upstream_url && d->cfg->upstream_identities;
}

static struct identities *ids_of(struct daemon *d)
{
	if (!d->identities) {
		d->identities = calloc(1, sizeof(*d->identities));
		if (d->identities)
			d->identities->out_fd = -1;
	}
	return d->identities;
}

static bool is_system(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(system_identities); i++)
		if (!strcmp(name, system_identities[i]))
			return true;
	return false;
}

static struct known *known_find(struct identities *s, const char *name)
{
	for (size_t i = 0; i < s->n_known; i++)
		if (!strcmp(s->known[i].name, name))
			return &s->known[i];
	return NULL;
}

static struct known *known_set(struct identities *s, const char *name, const char *gen)
{
	struct known *k = known_find(s, name);
	if (!k) {
		struct known *v = realloc(s->known, (s->n_known + 1) * sizeof(*v));
		if (!v)
			return NULL;
		s->known = v;
		k = &v[s->n_known++];
		memset(k, 0, sizeof(*k));
		snprintf(k->name, sizeof(k->name), "%s", name);
	}
	snprintf(k->gen, sizeof(k->gen), "%s", gen);
	return k;
}

static void known_drop(struct identities *s, const char *name)
{
	struct known *k = known_find(s, name);
	if (!k)
		return;
	size_t i = (size_t)(k - s->known);
	memmove(&s->known[i], &s->known[i + 1], (s->n_known - i - 1) * sizeof(*k));
	s->n_known--;
}

static void state_load(struct daemon *d, struct identities *s)
{
	s->loaded = true;
	yajl_val v = NULL;
	struct berr err;
	if (daemon_state_load(d, "agent/" STATE_FILE, RESULTS_MAX, &v, &err) < 0) {
		log_warn("%s; every identity is checked again", err.msg);
		return;
	}
	yajl_val ids = json_get(v, "identities");
	for (size_t i = 0; YAJL_IS_OBJECT(ids) && i < ids->u.object.len; i++) {
		const char *gen = json_str(ids->u.object.values[i]);
		const char *name = ids->u.object.keys[i];
		if (gen && strlen(name) <= IDENTITY_NAME_MAX && strlen(gen) <= IDENTITY_GEN_MAX)
			known_set(s, name, gen);
	}
	yajl_tree_free(v);
}

static void state_save(struct daemon *d, struct identities *s)
{
	yajl_gen g = json_gen_new(true);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_str(g, "identities");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < s->n_known; i++)
		json_gen_key_str(g, s->known[i].name, s->known[i].gen);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	struct berr err;
	if (daemon_state_save(d, "agent/" STATE_FILE, g, "identities: " STATE_FILE, &err) < 0)
		log_error("%s", err.msg);
}

/* Every identity the deployment needs, with the generation its keys come
 * from; a module whose record is not made yet waits for the next round. */
static size_t wanted_list(struct daemon *d, struct wanted *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(system_identities) && n < cap; i++)
		out[n++] = (struct wanted){system_identities[i], IDENTITY_SYSTEM_GENERATION};
	for (size_t i = 0; d->dep && i < d->dep->n_modules && n < cap; i++) {
		struct module_rt *m = module_find(d, d->dep->modules[i].name);
		if (m)
			out[n++] = (struct wanted){m->name, m->generation_id};
	}
	return n;
}

static bool is_wanted(const struct wanted *w, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(w[i].name, name))
			return true;
	return false;
}

bool identity_ready(struct daemon *d, const char *name, const char *generation_id)
{
	if (!enabled(d))
		return true;
	struct identities *s = ids_of(d);
	if (!s)
		return false;
	if (!s->loaded)
		state_load(d, s);
	struct known *k = known_find(s, name);
	return k && !strcmp(k->gen, generation_id);
}

static int64_t backoff(unsigned failures)
{
	int64_t delay = RETRY_MIN_MS;
	for (unsigned i = 1; i < failures && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) < 0)
		r = (unsigned)getpid();
	int64_t less = (int64_t)(r % 1000) * (delay / 4) / 1000;
	return delay - less < RETRY_MIN_MS ? RETRY_MIN_MS : delay - less;
}

/* The work: identities to put (new, with new keys, or not checked since
 * this daemon started) into s->job, and how many to delete. */
static size_t plan(struct identities *s, const struct wanted *w, size_t nw)
{
	s->n_job = 0;
	for (size_t i = 0; i < nw; i++) {
		struct known *k = known_find(s, w[i].name);
		if (k && k->checked && !strcmp(k->gen, w[i].gen))
			continue;
		struct known *j = &s->job[s->n_job++];
		snprintf(j->name, sizeof(j->name), "%s", w[i].name);
		snprintf(j->gen, sizeof(j->gen), "%s", w[i].gen);
	}
	size_t n_del = 0;
	for (size_t i = 0; i < s->n_known; i++)
		n_del += !is_system(s->known[i].name) && !is_wanted(w, nw, s->known[i].name);
	return s->n_job + n_del;
}

static char *job_text(struct daemon *d, struct identities *s, const struct wanted *w, size_t nw)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "rest_url", d->cfg->upstream_rest_url);
	json_gen_key_str(g, "hostname", d->cfg->iothub_hostname);
	json_gen_key_str(g, "device_id", d->cfg->device_id);
	json_gen_key_str(g, "device_key", d->cfg->device_key);
	if (d->cfg->upstream_ca_file)
		json_gen_key_str(g, "ca_file", d->cfg->upstream_ca_file);
	json_gen_str(g, "put");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_job; i++) {
		yajl_gen_map_open(g);
		json_gen_key_str(g, "id", s->job[i].name);
		json_gen_key_str(g, "generation_id", s->job[i].gen);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	json_gen_str(g, "delete");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_known; i++)
		if (!is_system(s->known[i].name) && !is_wanted(w, nw, s->known[i].name))
			json_gen_str(g, s->known[i].name);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	char *text = json_gen_done(g, NULL);
	return text;
}

static void spawn(struct daemon *d, struct identities *s)
{
	size_t cap = ARRAY_SIZE(system_identities) + (d->dep ? d->dep->n_modules : 0);
	cleanup_free struct wanted *w = calloc(cap, sizeof(*w));
	free(s->job);
	s->job = calloc(cap, sizeof(*s->job));
	if (!w || !s->job) {
		s->failures++;
		s->next_boot = boot_ms() + backoff(s->failures);
		return;
	}
	size_t nw = wanted_list(d, w, cap);
	if (plan(s, w, nw) == 0) {
		s->nothing_to_do = true;
		return;
	}
	cleanup_free char *text = job_text(d, s, w, nw);
	if (!text) {
		s->failures++;
		s->next_boot = boot_ms() + backoff(s->failures);
		return;
	}
	int job_fd = memfd_create("berth-identities-job", MFD_CLOEXEC);
	int out_fd = memfd_create("berth-identities-out", MFD_CLOEXEC);
	size_t len = strlen(text);
	bool ok = job_fd >= 0 && out_fd >= 0 && write(job_fd, text, len) == (ssize_t)len &&
		  lseek(job_fd, 0, SEEK_SET) == 0;
	explicit_bzero(text, len);
	pid_t pid = -1;
	if (ok) {
		const char *argv[] = {berth_self_exe(), "identities", NULL};
		pid = daemon_spawn((char *const *)argv, out_fd, -1, job_fd, false);
	}
	if (job_fd >= 0)
		close(job_fd);
	if (pid < 0) {
		if (out_fd >= 0)
			close(out_fd);
		log_error("identities: cannot start berth identities: %s", strerror(errno));
		s->failures++;
		s->next_boot = boot_ms() + backoff(s->failures);
		return;
	}
	s->pid = pid;
	s->out_fd = out_fd;
	log_debug("identities: checking %zu identit%s in IoT Hub", s->n_job,
		  s->n_job == 1 ? "y" : "ies");
}

void identities_tick(struct daemon *d)
{
	if (!enabled(d) || d->stopping)
		return;
	struct identities *s = ids_of(d);
	if (!s || s->pid > 0)
		return;
	if (s->seen_dep != d->dep) {
		/* A new deployment is worth a try at once, backoff or not. */
		s->seen_dep = d->dep;
		s->next_boot = 0;
		s->failures = 0;
		s->nothing_to_do = false;
	}
	if (s->nothing_to_do || boot_ms() < s->next_boot)
		return;
	if (!s->loaded)
		state_load(d, s);
	spawn(d, s);
}

int64_t identities_next_deadline(struct daemon *d)
{
	struct identities *s = d->identities;
	if (!enabled(d) || !s || s->pid > 0 || s->nothing_to_do)
		return INT64_MAX;
	return s->next_boot;
}

/* Applies one result line; true when an identity became ready or went. */
static bool apply_result(struct identities *s, yajl_val r, bool *failed)
{
	const char *id = json_str(json_get(r, "id"));
	const char *op = json_str(json_get(r, "op"));
	const char *action = json_str(json_get(r, "action"));
	yajl_val okv = json_get(r, "ok");
	if (!id || !op)
		return false;
	if (!YAJL_IS_TRUE(okv)) {
		const char *e = json_str(json_get(r, "error"));
		snprintf(s->last_error, sizeof(s->last_error), "%s", e ? e : "failed");
		log_warn("identities: %s", s->last_error);
		*failed = true;
		return false;
	}
	if (!strcmp(op, "delete")) {
		log_info("identity %s %s in IoT Hub", id,
			 action && !strcmp(action, "absent") ? "was already gone" : "deleted");
		known_drop(s, id);
		return true;
	}
	for (size_t i = 0; i < s->n_job; i++) {
		if (strcmp(s->job[i].name, id))
			continue;
		struct known *k = known_find(s, id);
		bool changed = !k || strcmp(k->gen, s->job[i].gen);
		k = known_set(s, id, s->job[i].gen);
		if (k)
			k->checked = true;
		log_msg(action && !strcmp(action, "unchanged") ? LOG_LVL_DEBUG : LOG_LVL_INFO,
			"identity %s %s in IoT Hub", id, action ? action : "put");
		return changed;
	}
	return false;
}

bool identities_child_exited(struct daemon *d, pid_t pid, int status)
{
	struct identities *s = d->identities;
	if (!s || pid != s->pid || pid <= 0)
		return false;
	s->pid = 0;
	s->nothing_to_do = false; /* planned again on the next tick */
	cleanup_free char *out = NULL;
	off_t size = lseek(s->out_fd, 0, SEEK_END);
	if (size > 0 && size <= RESULTS_MAX && (out = malloc((size_t)size + 1)) &&
	    pread(s->out_fd, out, (size_t)size, 0) == size)
		out[size] = '\0';
	else if (out) {
		free(out);
		out = NULL;
	}
	close(s->out_fd);
	s->out_fd = -1;
	bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0, changed = false;
	size_t results = 0;
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		yajl_val r = NULL;
		struct berr err;
		if (json_parse(line, strlen(line), 64 * 1024, "identities result", &r, &err) == 0) {
			changed |= apply_result(s, r, &failed);
			results++;
		}
		yajl_tree_free(r);
		if (!next)
			break;
	}
	if (failed && !results)
		snprintf(s->last_error, sizeof(s->last_error),
			 "berth identities ended with status %d", status);
	state_save(d, s);
	if (failed) {
		s->failures++;
		int64_t delay = backoff(s->failures);
		s->next_boot = boot_ms() + delay;
		log_info("identities: trying again in %lld ms", (long long)delay);
	} else {
		s->failures = 0;
		s->next_boot = 0;
		s->last_error[0] = '\0';
		s->last_ok_ms = wall_ms();
	}
	struct berr err;
	if (changed && d->cfg->hub_enabled && d->hub.listen_fd >= 0 &&
	    hubproc_write_config(d, &err) < 0)
		log_error("hub config: %s", err.msg);
	return true;
}

void identities_gen_status(struct daemon *d, yajl_gen g)
{
	json_gen_key_str(g, "identities", d->cfg->upstream_identities ? "iothub" : "none");
	if (!enabled(d))
		return;
	struct identities *s = ids_of(d);
	size_t cap = ARRAY_SIZE(system_identities) + (d->dep ? d->dep->n_modules : 0);
	cleanup_free struct wanted *w = calloc(cap, sizeof(*w));
	size_t nw = w ? wanted_list(d, w, cap) : 0, ready = 0;
	for (size_t i = 0; i < nw; i++)
		ready += identity_ready(d, w[i].name, w[i].gen);
	json_gen_key_int(g, "identities_wanted", (long long)nw);
	json_gen_key_int(g, "identities_ready", (long long)ready);
	if (s && s->last_error[0])
		json_gen_key_str(g, "identities_error", s->last_error);
	if (s && s->last_ok_ms)
		json_gen_key_int(g, "identities_synced_ms", s->last_ok_ms);
}

void identities_free(struct daemon *d)
{
	struct identities *s = d->identities;
	if (!s)
		return;
	if (s->out_fd >= 0)
		close(s->out_fd);
	free(s->known);
	free(s->job);
	free(s);
	d->identities = NULL;
}
