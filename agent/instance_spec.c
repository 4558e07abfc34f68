/* The instance spec of a module: the image's config, then the module's
 * createOptions and env, then the identity the module gets from the daemon
 * (environment, the hub and workload sockets, its token directory). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/workload.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "oci/oci.h"
#include "shim/shim.h"

/* Connection strings in a module's environment take precedence over
 * IOTEDGE_* in every Azure IoT SDK: the module would bypass the identity
 * berth gives it. */
static const char *const sdk_overrides[] = {"EdgeHubConnectionString", "IotHubConnectionString"};

static void drop_overrides(struct module_rt *m, char **env)
{
	size_t w = 0;
	for (size_t r = 0; env && env[r]; r++) {
		bool drop = false;
		for (size_t i = 0; i < ARRAY_SIZE(sdk_overrides) && !drop; i++) {
			size_t n = strlen(sdk_overrides[i]);
			drop = !strncmp(env[r], sdk_overrides[i], n) && env[r][n] == '=';
		}
		if (drop) {
			log_warn("module %s: %.*s dropped from its environment: it would override "
				 "the identity berth gives the module",
				 m->name, (int)strcspn(env[r], "="), env[r]);
			free(env[r]);
		} else {
			env[w++] = env[r];
		}
	}
	if (env)
		env[w] = NULL;
}

/* Image env, then createOptions Env, then the module's env, then the
 * identity variables, which a manifest cannot override. */
static int build_env(struct daemon *d, struct module_rt *m, const struct deployment_module *dm,
		     const struct oci_image *img, struct instance_spec *spec)
{
	for (char **e = img->env; e && *e; e++)
		if (strchr(*e, '=') && strv_env_set(&spec->env, *e) < 0)
			return -1;
	for (char **e = dm->create.env; e && *e; e++)
		if (strv_env_set(&spec->env, *e) < 0)
			return -1;
	for (size_t i = 0; i < dm->n_env; i++)
		if (strv_env_set_kv(&spec->env, dm->env[i].key, dm->env[i].value) < 0)
			return -1;
	drop_overrides(m, spec->env);
	char host[HOSTNAME_MAX + 1];
	const struct {
		const char *k, *v;
	} ids[] = {
	    {"IOTEDGE_DEVICEID", d->cfg->device_id},
	    {"IOTEDGE_MODULEID", m->name},
	    {"IOTEDGE_IOTHUBHOSTNAME", d->cfg->iothub_hostname},
	    {"IOTEDGE_GATEWAYHOSTNAME", gateway_hostname(d, host)},
	    {"IOTEDGE_MODULEGENERATIONID", m->generation_id},
	    {"IOTEDGE_AUTHSCHEME", "sasToken"},
	    {"BERTH_HUB_SOCKET", MODULE_HUB_SOCKET},
	    {"BERTH_TOKEN_FILE", MODULE_TOKEN_FILE},
	    {"IOTEDGE_WORKLOADURI", "unix://" WORKLOAD_MODULE_DIR "/" WORKLOAD_SOCKET},
	    {"IOTEDGE_APIVERSION", WORKLOAD_API_VERSION},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		if (strv_env_set_kv(&spec->env, ids[i].k, ids[i].v) < 0)
			return -1;
	return 0;
}

static int add_bind(struct instance_spec *spec, const char *src, const char *dst, bool ro)
{
	struct bind_mount *b = realloc(spec->binds, (spec->n_binds + 1) * sizeof(*b));
	if (!b)
		return -1;
	spec->binds = b;
	b = &spec->binds[spec->n_binds];
	memset(b, 0, sizeof(*b));
	b->source = strdup(src);
	b->destination = strdup(dst);
	b->readonly = ro;
	spec->n_binds++;
	return b->source && b->destination ? 0 : -1;
}

/* The image's Healthcheck under the module's; with on-unhealthy the shim
 * stops an unhealthy instance and its exit brings the restart. An image's
 * check berth cannot read is left out, with a warning. */
static int module_health(struct module_rt *m, const struct deployment_module *dm,
			 const struct oci_image *img, struct instance_health *out, struct berr *err)
{
	struct healthcheck image = {0};
	char what[300];
	snprintf(what, sizeof(what), "image %.200s: config Healthcheck", img->ref);
	struct berr e;
	if (healthcheck_parse_text(img->healthcheck, what, &image, &e) < 0)
		log_warn("module %s: %s (the image's health check is ignored)", m->name, e.msg);
	int rc = healthcheck_resolve(&dm->create.health, &image, out, err);
	healthcheck_clear(&image);
	out->stop_when_unhealthy = dm->restart == RESTART_ON_UNHEALTHY;
	return rc;
}

struct instance_spec *module_instance_spec(struct daemon *d, struct module_rt *m,
					   const struct deployment_module *dm,
					   const struct oci_image *img, struct berr *err)
{
	struct instance_spec *spec = calloc(1, sizeof(*spec));
	if (!spec) {
		berr_set(err, ENOMEM, "instance spec");
		return NULL;
	}
	spec->name = strdup(m->name);
	spec->image_digest = strdup(img->digest);
	spec->layer_dirs = calloc(img->n_layers + 1, sizeof(char *));
	if (!spec->name || !spec->image_digest || !spec->layer_dirs)
		goto nomem;
	for (size_t i = 0; i < img->n_layers; i++)
		if (!(spec->layer_dirs[i] = strdup(img->layer_dirs[i])))
			goto nomem;
	if (create_options_apply(&dm->create, img->entrypoint, img->cmd, spec, err) < 0)
		goto fail;
	if (!spec->cwd && img->working_dir && *img->working_dir &&
	    !(spec->cwd = strdup(img->working_dir)))
		goto nomem;
	if (!spec->user && img->user && *img->user && !(spec->user = strdup(img->user)))
		goto nomem;
	if (build_env(d, m, dm, img, spec) < 0)
		goto nomem;
	char shared[4200], mine[4200], workload[4300];
	snprintf(shared, sizeof(shared), "%s/" SHARED_DIR, d->run);
	module_runtime_dir(d, m->name, mine, sizeof(mine));
	if (workload_socket_dir(d, m->name, workload, sizeof(workload)) < 0) {
		berr_set(err, ENAMETOOLONG, "module %s: workload socket", m->name);
		goto fail;
	}
	if (add_bind(spec, shared, MODULE_RUN_DIR, true) < 0 ||
	    add_bind(spec, mine, MODULE_RUNTIME_DIR, true) < 0 ||
	    add_bind(spec, workload, WORKLOAD_MODULE_DIR, true) < 0)
		goto nomem;
	spec->stop_grace_sec = module_stop_grace(d, m->name);
	if (module_health(m, dm, img, &spec->health, err) < 0)
		goto fail;
	return spec;
nomem:
	berr_set(err, ENOMEM, "instance spec");
fail:
	instance_spec_free(spec);
	return NULL;
}
