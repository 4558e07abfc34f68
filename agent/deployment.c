#include "agent/deployment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "hub/hub.h"
#include "hub/route.h"
#include "shim/shim.h"

#define ENV_KEY_MAX   256
#define ENV_VALUE_MAX 8192
#define CHUNKS_MAX    99

/* A module is run as the instance of the same name: the instance rules, and
 * IoT Hub's shorter bound on module ids. */
bool module_name_valid(const char *name)
{
	return strlen(name) <= MODULE_NAME_MAX && instance_name_valid(name);
}

const char *restart_policy_name(enum restart_policy p)
{
	static const char *const names[] = {[RESTART_NEVER] = "never",
					    [RESTART_ON_FAILURE] = "on-failure",
					    [RESTART_ON_UNHEALTHY] = "on-unhealthy",
					    [RESTART_ALWAYS] = "always"};
	return (size_t)p < ARRAY_SIZE(names) ? names[p] : "?";
}

static void module_clear(struct deployment_module *m)
{
	create_options_clear(&m->create);
	for (size_t i = 0; i < m->n_env; i++)
		free_many(m->env[i].key, m->env[i].value);
	free_many(m->name, m->image, m->create_options_text, m->env, m->version, m->desired_twin);
}

void deployment_free(struct deployment *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_modules; i++)
		module_clear(&d->modules[i]);
	free(d->modules);
	for (size_t i = 0; i < d->n_routes; i++)
		free_many(d->routes[i].name, d->routes[i].text);
	free(d->routes);
	registry_creds_free(d->registries, d->n_registries);
	free(d->schema_version);
	free(d);
}

const struct deployment_module *deployment_module(const struct deployment *d, const char *name)
{
	for (size_t i = 0; d && i < d->n_modules; i++)
		if (!strcmp(d->modules[i].name, name))
			return &d->modules[i];
	return NULL;
}

static bool image_ref_valid(const char *ref)
{
	size_t n = strlen(ref);
	if (n == 0 || n > IMAGE_REF_MAX)
		return false;
	for (const char *p = ref; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* Hashes one field: "ab"+"c" differs from "a"+"bc". */
static uint64_t hash_field(uint64_t h, const char *s)
{
	h = fnv1a(h, s, s ? strlen(s) : 0);
	return fnv1a(h, "\xff", 1);
}

/* createOptions, then createOptions01..99, joined in numeric order. */
static int join_create_options(yajl_val settings, const struct jpath *sp, char **out,
			       struct berr *err)
{
	*out = NULL;
	const char *chunks[CHUNKS_MAX + 1] = {0};
	int last = -1;
	for (size_t i = 0; i < settings->u.object.len; i++) {
		const char *k = settings->u.object.keys[i];
		if (strncmp(k, "createOptions", 13))
			continue;
		int idx;
		const char *suffix = k + 13;
		if (!*suffix)
			idx = 0;
		else if (strlen(suffix) == 2 && suffix[0] >= '0' && suffix[0] <= '9' &&
			 suffix[1] >= '0' && suffix[1] <= '9' && strcmp(suffix, "00"))
			idx = (suffix[0] - '0') * 10 + (suffix[1] - '0');
		else
			continue; /* not one of ours: reported with the other unknown keys */
		struct jpath kp;
		jpath_key(&kp, sp, k);
		yajl_val v = settings->u.object.values[i];
		if (YAJL_IS_NULL(v))
			continue;
		if (!YAJL_IS_STRING(v))
			return berr_set(
			    err, 0, "%s: expected a string (Docker create options as JSON text)",
			    kp.s);
		chunks[idx] = v->u.string;
		if (idx > last)
			last = idx;
	}
	if (last < 0)
		return 0;
	struct strbuf sb = STRBUF_INIT;
	sb.max = CREATE_OPTIONS_MAX;
	for (int i = 0; i <= last; i++) {
		if (!chunks[i]) {
			if (i == 0)
				continue; /* chunks may start at 01 */
			struct jpath kp;
			char key[32];
			snprintf(key, sizeof(key), "createOptions%02d", i);
			jpath_key(&kp, sp, key);
			strbuf_release(&sb);
			return berr_set(err, 0,
					"%s: required but missing (createOptions%02d is present)",
					kp.s, last);
		}
		if (strbuf_puts(&sb, chunks[i]) < 0) {
			strbuf_release(&sb);
			struct jpath kp;
			jpath_key(&kp, sp, "createOptions");
			return berr_set(err, 0, "%s: longer than %d bytes in all", kp.s,
					CREATE_OPTIONS_MAX);
		}
	}
	*out = strbuf_detach(&sb);
	return *out ? 0 : berr_set(err, ENOMEM, "createOptions");
}

static int parse_env(struct deployment_module *m, yajl_val env, const struct jpath *ep,
		     struct berr *err)
{
	size_t n = env->u.object.len;
	if (n > DEPLOYMENT_MAX_ENV)
		return berr_set(err, 0, "%s: more than %d variables", ep->s, DEPLOYMENT_MAX_ENV);
	m->env = calloc(n ? n : 1, sizeof(*m->env));
	if (!m->env)
		return berr_set(err, ENOMEM, "%s", ep->s);
	for (size_t i = 0; i < n; i++) {
		const char *k = env->u.object.keys[i];
		yajl_val e = env->u.object.values[i];
		struct jpath kp;
		jpath_key(&kp, ep, k);
		if (!*k || strlen(k) > ENV_KEY_MAX || strchr(k, '='))
			return berr_set(err, 0, "%s: not a valid variable name", kp.s);
		if (!YAJL_IS_OBJECT(e))
			return berr_set(err, 0, "%s: expected {\"value\": ...}", kp.s);
		yajl_val v = json_get(e, "value");
		struct jpath vp;
		jpath_key(&vp, &kp, "value");
		const char *text;
		if (!v || YAJL_IS_NULL(v))
			return berr_set(err, 0, "%s: required but missing", vp.s);
		if (YAJL_IS_STRING(v))
			text = v->u.string;
		else if (YAJL_IS_NUMBER(v))
			text = v->u.number.r;
		else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
			text = YAJL_IS_TRUE(v) ? "true" : "false";
		else
			return berr_set(err, 0, "%s: expected a string, number or boolean", vp.s);
		if (strlen(text) > ENV_VALUE_MAX)
			return berr_set(err, 0, "%s: longer than %d characters", vp.s,
					ENV_VALUE_MAX);
		struct module_env *me = &m->env[m->n_env++];
		if (!(me->key = strdup(k)) || !(me->value = strdup(text)))
			return berr_set(err, ENOMEM, "%s", kp.s);
	}
	return 0;
}

static int parse_module(struct deployment_module *m, const char *name, yajl_val mv,
			const struct jpath *mp, const struct deployment_policy *policy,
			struct berr *err)
{
	if (!module_name_valid(name))
		return berr_set(
		    err, 0,
		    "%s: module names are 1-%d characters: letters, digits, '_', '.', '-', "
		    "starting with a letter or digit",
		    mp->s, MODULE_NAME_MAX);
	if (!YAJL_IS_OBJECT(mv))
		return berr_set(err, 0, "%s: expected an object", mp->s);
	if (!(m->name = strdup(name)))
		return berr_set(err, ENOMEM, "%s", mp->s);

	const char *type = NULL, *status = NULL, *restart = NULL, *pull = NULL, *version = NULL;
	int64_t order = STARTUP_ORDER_DEFAULT;
	struct jpath p;
	if (jp_str(mv, "type", mp, false, 64, &type, err) < 0)
		return -1;
	if (type && strcmp(type, "docker")) {
		jpath_key(&p, mp, "type");
		return berr_set(err, 0, "%s: \"%.32s\" is not supported (expected \"docker\")", p.s,
				type);
	}
	if (jp_str(mv, "version", mp, false, 128, &version, err) < 0)
		return -1;
	if (version && !(m->version = strdup(version)))
		return berr_set(err, ENOMEM, "%s", mp->s);

	m->run = true;
	if (jp_str(mv, "status", mp, false, 32, &status, err) < 0)
		return -1;
	if (status) {
		jpath_key(&p, mp, "status");
		if (!strcmp(status, "stopped"))
			m->run = false;
		else if (strcmp(status, "running"))
			return berr_set(err, 0, "%s: \"%.32s\" is not one of running, stopped", p.s,
					status);
	}
	m->restart = RESTART_ALWAYS;
	if (jp_str(mv, "restartPolicy", mp, false, 32, &restart, err) < 0)
		return -1;
	if (restart) {
		static const enum restart_policy all[] = {RESTART_NEVER, RESTART_ON_FAILURE,
							  RESTART_ON_UNHEALTHY, RESTART_ALWAYS};
		bool found = false;
		for (size_t i = 0; i < ARRAY_SIZE(all) && !found; i++)
			if (!strcmp(restart, restart_policy_name(all[i]))) {
				m->restart = all[i];
				found = true;
			}
		if (!found) {
			jpath_key(&p, mp, "restartPolicy");
			return berr_set(
			    err, 0,
			    "%s: \"%.32s\" is not one of never, on-failure, on-unhealthy, always",
			    p.s, restart);
		}
	}
	m->pull = PULL_ON_CREATE;
	if (jp_str(mv, "imagePullPolicy", mp, false, 32, &pull, err) < 0)
		return -1;
	if (pull) {
		if (!strcmp(pull, "never"))
			m->pull = PULL_NEVER;
		else if (strcmp(pull, "on-create")) {
			jpath_key(&p, mp, "imagePullPolicy");
			return berr_set(err, 0, "%s: \"%.32s\" is not one of on-create, never", p.s,
					pull);
		}
	}
	if (jp_int(mv, "startupOrder", mp, false, 0, STARTUP_ORDER_DEFAULT, &order, err) < 0)
		return -1;
	m->startup_order = (uint32_t)order;

	yajl_val settings, env;
	struct jpath sp;
	jpath_key(&sp, mp, "settings");
	const char *image;
	if (jp_obj(mv, "settings", mp, true, &settings, err) < 0 ||
	    jp_str(settings, "image", &sp, true, 0, &image, err) < 0)
		return -1;
	if (!image_ref_valid(image)) {
		jpath_key(&p, &sp, "image");
		return berr_set(err, 0, "%s: not an image reference (1-%d printable characters)",
				p.s, IMAGE_REF_MAX);
	}
	if (!(m->image = strdup(image)))
		return berr_set(err, ENOMEM, "%s", mp->s);
	if (join_create_options(settings, &sp, &m->create_options_text, err) < 0)
		return -1;
	jpath_key(&p, &sp, "createOptions");
	if (create_options_parse(m->create_options_text,
				 m->create_options_text ? strlen(m->create_options_text) : 0, &p,
				 &m->create, err) < 0)
		return -1;
	if (m->create.privileged && !(policy && policy->allow_privileged))
		return berr_set(
		    err, 0,
		    "%s: HostConfig.Privileged is refused: the daemon config does not set "
		    "allow_privileged",
		    p.s);

	jpath_key(&p, mp, "env");
	if (jp_obj(mv, "env", mp, false, &env, err) < 0)
		return -1;
	if (env && parse_env(m, env, &p, err) < 0)
		return -1;

	uint64_t h = hash_field(FNV1A_INIT, m->image);
	h = hash_field(h, m->create_options_text);
	for (size_t i = 0; i < m->n_env; i++) {
		h = hash_field(h, m->env[i].key);
		h = hash_field(h, m->env[i].value);
	}
	snprintf(m->config_hash, sizeof(m->config_hash), "%016llx", (unsigned long long)h);
	return 0;
}

static int parse_registry_credentials(struct deployment *d, yajl_val creds, const struct jpath *cp,
				      struct berr *err)
{
	size_t n = creds->u.object.len;
	if (n > 64)
		return berr_set(err, 0, "%s: more than 64 registries", cp->s);
	d->registries = calloc(n ? n : 1, sizeof(*d->registries));
	if (!d->registries)
		return berr_set(err, ENOMEM, "%s", cp->s);
	for (size_t i = 0; i < n; i++) {
		struct jpath rp;
		jpath_key(&rp, cp, creds->u.object.keys[i]);
		yajl_val r = creds->u.object.values[i];
		if (!YAJL_IS_OBJECT(r))
			return berr_set(err, 0, "%s: expected an object", rp.s);
		const char *addr, *user, *pass;
		if (jp_str(r, "address", &rp, true, 255, &addr, err) < 0 ||
		    jp_str(r, "username", &rp, true, 256, &user, err) < 0 ||
		    jp_str(r, "password", &rp, true, 4096, &pass, err) < 0)
			return -1;
		struct registry_cred *c = &d->registries[d->n_registries++];
		if (!(c->host = strdup(addr)) || !(c->username = strdup(user)) ||
		    !(c->password = strdup(pass)))
			return berr_set(err, ENOMEM, "%s", rp.s);
	}
	return 0;
}

/* Zeroed room for an entry per member of obj, at most max of them: NULL
 * with "<path>: more than <max> <what>" beyond. */
static void *entries_for(yajl_val obj, const struct jpath *path, size_t max, const char *what,
			 size_t size, struct berr *err)
{
	size_t n = obj->u.object.len;
	if (n > max) {
		berr_set(err, 0, "%s: more than %zu %s", path->s, max, what);
		return NULL;
	}
	void *a = calloc(n ? n : 1, size);
	if (!a)
		berr_set(err, ENOMEM, "%s", path->s);
	return a;
}

static int parse_edge_agent(struct deployment *d, yajl_val agent, const struct jpath *ap,
			    const struct deployment_policy *policy, struct berr *err)
{
	yajl_val desired, runtime, sysmods, modules;
	struct jpath dp, p;
	jpath_key(&dp, ap, "properties.desired");
	if (jp_obj(agent, "properties.desired", ap, true, &desired, err) < 0)
		return -1;
	const char *schema = NULL;
	if (jp_str(desired, "schemaVersion", &dp, false, 16, &schema, err) < 0)
		return -1;
	if (schema && !(d->schema_version = strdup(schema)))
		return berr_set(err, ENOMEM, "%s", dp.s);
	if (jp_obj(desired, "runtime", &dp, false, &runtime, err) < 0)
		return -1;
	if (runtime) {
		yajl_val rs, creds;
		struct jpath rp, rsp;
		jpath_key(&rp, &dp, "runtime");
		jpath_key(&rsp, &rp, "settings");
		if (jp_obj(runtime, "settings", &rp, false, &rs, err) < 0 ||
		    jp_obj(rs, "registryCredentials", &rsp, false, &creds, err) < 0)
			return -1;
		jpath_key(&p, &rsp, "registryCredentials");
		if (creds && parse_registry_credentials(d, creds, &p, err) < 0)
			return -1;
	}
	/* berth itself plays edgeAgent and edgeHub: their entries are accepted. */
	if (jp_obj(desired, "systemModules", &dp, false, &sysmods, err) < 0 ||
	    jp_obj(desired, "modules", &dp, false, &modules, err) < 0)
		return -1;
	if (!modules)
		return 0;
	jpath_key(&p, &dp, "modules");
	d->modules =
	    entries_for(modules, &p, DEPLOYMENT_MAX_MODULES, "modules", sizeof(*d->modules), err);
	if (!d->modules)
		return -1;
	for (size_t i = 0; i < modules->u.object.len; i++) {
		const char *name = modules->u.object.keys[i];
		struct jpath mp;
		jpath_key(&mp, &p, name);
		for (size_t j = 0; j < d->n_modules; j++)
			if (!strcmp(d->modules[j].name, name))
				return berr_set(err, 0, "%s: module given twice", mp.s);
		d->n_modules++;
		if (parse_module(&d->modules[i], name, modules->u.object.values[i], &mp, policy,
				 err) < 0)
			return -1;
	}
	return 0;
}

static int parse_edge_hub(struct deployment *d, yajl_val hub, const struct jpath *hp,
			  struct berr *err)
{
	yajl_val desired, routes, sf;
	struct jpath dp, rp, p;
	jpath_key(&dp, hp, "properties.desired");
	if (jp_obj(hub, "properties.desired", hp, true, &desired, err) < 0 ||
	    jp_obj(desired, "routes", &dp, false, &routes, err) < 0 ||
	    jp_obj(desired, "storeAndForwardConfiguration", &dp, false, &sf, err) < 0)
		return -1;
	jpath_key(&p, &dp, "storeAndForwardConfiguration");
	yajl_val limits = NULL;
	struct jpath lp;
	jpath_key(&lp, &p, "storeLimits");
	if (jp_int(sf, "timeToLiveSecs", &p, false, 0, INT32_MAX, &d->ttl_secs, err) < 0 ||
	    jp_obj(sf, "storeLimits", &p, false, &limits, err) < 0 ||
	    jp_int(limits, "maxSizeBytes", &lp, false, 65536, 1LL << 50, &d->store_max_bytes, err) <
		0)
		return -1;
	if (!routes)
		return 0;
	jpath_key(&rp, &dp, "routes");
	d->routes =
	    entries_for(routes, &rp, DEPLOYMENT_MAX_ROUTES, "routes", sizeof(*d->routes), err);
	if (!d->routes)
		return -1;
	for (size_t i = 0; i < routes->u.object.len; i++) {
		const char *name = routes->u.object.keys[i];
		yajl_val r = routes->u.object.values[i];
		jpath_key(&p, &rp, name);
		if (!*name || strlen(name) > 128)
			return berr_set(err, 0, "%s: route names are 1-128 characters", p.s);
		const char *text = NULL;
		int64_t prio = -1, ttl = 0;
		if (YAJL_IS_STRING(r))
			text = r->u.string;
		else if (YAJL_IS_OBJECT(r)) {
			if (jp_str(r, "route", &p, true, ROUTE_TEXT_MAX, &text, err) < 0 ||
			    jp_int(r, "priority", &p, false, 0, 9, &prio, err) < 0 ||
			    jp_int(r, "timeToLiveSecs", &p, false, 0, INT32_MAX, &ttl, err) < 0)
				return -1;
		} else
			return berr_set(err, 0, "%s: expected a route string or {\"route\": ...}",
					p.s);
		if (strlen(text) > ROUTE_TEXT_MAX)
			return berr_set(err, 0, "%s: longer than %d characters", p.s,
					ROUTE_TEXT_MAX);
		struct deployment_route *dr = &d->routes[d->n_routes++];
		dr->priority = prio < 0 ? ROUTE_DEFAULT_PRIORITY : (uint32_t)prio;
		dr->ttl_secs = (uint32_t)ttl;
		if (!(dr->name = strdup(name)) || !(dr->text = strdup(text)))
			return berr_set(err, ENOMEM, "%s", p.s);
	}
	/* Compile them as the hub will, so a bad route refuses the deployment. */
	struct route_def *defs = calloc(d->n_routes, sizeof(*defs));
	if (!defs)
		return berr_set(err, ENOMEM, "%s", rp.s);
	for (size_t i = 0; i < d->n_routes; i++)
		defs[i] = (struct route_def){.name = d->routes[i].name,
					     .text = d->routes[i].text,
					     .priority = d->routes[i].priority,
					     .ttl_secs = d->routes[i].ttl_secs};
	struct route_table *t = NULL;
	int rc = route_table_build(defs, d->n_routes, &t, err);
	free(defs);
	if (rc < 0)
		return berr_wrap(err, "%s", rp.s);
	route_table_free(t);
	return 0;
}

static int module_twin(struct deployment *d, yajl_val content, const struct jpath *cp,
		       struct berr *err)
{
	for (size_t i = 0; i < content->u.object.len; i++) {
		const char *k = content->u.object.keys[i];
		if (!strcmp(k, "$edgeAgent") || !strcmp(k, "$edgeHub"))
			continue;
		struct jpath kp, dp;
		jpath_key(&kp, cp, k);
		yajl_val v = content->u.object.values[i], desired;
		if (!YAJL_IS_OBJECT(v))
			return berr_set(err, 0, "%s: expected an object", kp.s);
		if (jp_obj(v, "properties.desired", &kp, false, &desired, err) < 0)
			return -1;
		struct deployment_module *m = NULL;
		for (size_t j = 0; j < d->n_modules; j++)
			if (!strcmp(d->modules[j].name, k))
				m = &d->modules[j];
		if (!m || !desired)
			continue; /* a twin for a module not deployed here has no one to serve */
		jpath_key(&dp, &kp, "properties.desired");
		yajl_gen g = json_gen_new(false);
		if (!g)
			return berr_set(err, ENOMEM, "%s", dp.s);
		size_t len = 0;
		char *text = NULL;
		if (json_gen_val(g, desired) == 0)
			text = json_gen_done(g, &len);
		if (!text)
			return berr_set(err, 0, "%s: cannot be written back as JSON", dp.s);
		if (len > HUB_TWIN_SECTION_MAX) {
			free(text);
			return berr_set(err, 0, "%s: larger than %d bytes", dp.s,
					HUB_TWIN_SECTION_MAX);
		}
		m->desired_twin = text;
	}
	return 0;
}

static int order_cmp(const void *a, const void *b)
{
	const struct deployment_module *x = a, *y = b;
	if (x->startup_order != y->startup_order)
		return x->startup_order < y->startup_order ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int parse_doc(struct deployment *d, yajl_val doc, const struct deployment_policy *policy,
		     struct berr *err)
{
	struct jpath root, cp, p;
	jpath_root(&root);
	if (!YAJL_IS_OBJECT(doc))
		return berr_set(err, 0, "$: expected an object");
	/* `az iot edge set-modules` wraps the manifest in {"content": ...}. */
	yajl_val top = doc, content, agent, hub;
	struct jpath tp = root;
	if (!json_get(doc, "modulesContent") && json_get(doc, "content")) {
		if (jp_obj(doc, "content", &root, true, &top, err) < 0)
			return -1;
		jpath_key(&tp, &root, "content");
	}
	jpath_key(&cp, &tp, "modulesContent");
	if (jp_obj(top, "modulesContent", &tp, true, &content, err) < 0 ||
	    jp_obj(content, "$edgeAgent", &cp, true, &agent, err) < 0)
		return -1;
	jpath_key(&p, &cp, "$edgeAgent");
	if (parse_edge_agent(d, agent, &p, policy, err) < 0)
		return -1;
	if (jp_obj(content, "$edgeHub", &cp, false, &hub, err) < 0)
		return -1;
	jpath_key(&p, &cp, "$edgeHub");
	if (hub && parse_edge_hub(d, hub, &p, err) < 0)
		return -1;
	if (module_twin(d, content, &cp, err) < 0)
		return -1;
	if (d->n_modules)
		qsort(d->modules, d->n_modules, sizeof(*d->modules), order_cmp);
	return 0;
}

static int fill(yajl_val doc, void *obj, const void *policy, struct berr *err)
{
	struct deployment *d = obj;
	d->ttl_secs = 7200;
	return parse_doc(d, doc, policy, err);
}

static void free_deployment(void *d)
{
	deployment_free(d);
}

int deployment_parse(const char *buf, size_t len, const char *what,
		     const struct deployment_policy *policy, struct deployment **out,
		     struct berr *err)
{
	*out = json_parse_new(buf, len, DEPLOYMENT_MAX_BYTES, what, sizeof(**out), fill, policy,
			      free_deployment, err);
	return *out ? 0 : -1;
}
