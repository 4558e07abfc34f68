/* Private to agent/: deployments in Azure IoT Edge's manifest format (deployment.json), as
 * `az iot edge set-modules` takes them: {"modulesContent": {...}} or
 * {"content": {"modulesContent": {...}}}. A deployment is validated whole
 * before it replaces the running one; the first error names its JSON path:
 *   $.modulesContent.$edgeAgent['properties.desired'].modules.web.settings.image: required but
 * missing */
#ifndef BERTH_AGENT_DEPLOYMENT_H
#define BERTH_AGENT_DEPLOYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/createoptions.h"
#include "common/err.h"

#define DEPLOYMENT_MAX_BYTES   (1024 * 1024)
#define DEPLOYMENT_MAX_MODULES 64
#define DEPLOYMENT_MAX_ROUTES  256
#define DEPLOYMENT_MAX_ENV     256
#define MODULE_NAME_MAX	       63
#define IMAGE_REF_MAX	       1024
#define STARTUP_ORDER_DEFAULT  4294967295u

enum restart_policy { RESTART_NEVER, RESTART_ON_FAILURE, RESTART_ON_UNHEALTHY, RESTART_ALWAYS };
enum pull_policy { PULL_ON_CREATE, PULL_NEVER };

struct module_env {
	char *key;
	char *value;
};

struct deployment_module {
	char *name;
	char *image;
	char *create_options_text;    /* chunks joined; NULL when absent */
	struct create_options create; /* parsed */
	struct module_env *env;	      /* the module's `env`, in manifest order */
	size_t n_env;
	bool run;		     /* status "running" (default) or "stopped" */
	enum restart_policy restart; /* default always */
	enum pull_policy pull;	     /* default on-create */
	uint32_t startup_order;	     /* default 4294967295 (last) */
	char *version;
	char *desired_twin; /* modulesContent.<name>['properties.desired'] as JSON */
	/* Changes when image, createOptions or env change: the instance must then
	 * be created again. */
	char config_hash[17];
};

struct deployment_route {
	char *name;
	char *text;
	uint32_t priority; /* 0-9; ROUTE_DEFAULT_PRIORITY when not given */
	uint32_t ttl_secs; /* 0: the hub's default */
};

struct deployment {
	struct deployment_module *modules; /* sorted by startup order, then name */
	size_t n_modules;
	struct deployment_route *routes;
	size_t n_routes;
	int64_t ttl_secs;	 /* storeAndForwardConfiguration.timeToLiveSecs, default 7200 */
	int64_t store_max_bytes; /* storeAndForwardConfiguration.storeLimits.maxSizeBytes, 0 none */
	struct registry_cred *registries; /* runtime.settings.registryCredentials */
	size_t n_registries;
	char *schema_version;
};

struct deployment_policy {
	bool allow_privileged;
};

NODISCARD int deployment_parse(const char *buf, size_t len, const char *what,
			       const struct deployment_policy *policy, struct deployment **out,
			       struct berr *err);
void deployment_free(struct deployment *d);

const struct deployment_module *deployment_module(const struct deployment *d, const char *name);

/* Module names: 1-63 characters, [A-Za-z0-9][A-Za-z0-9_.-]*, so a name is
 * safe as an instance directory, cgroup and MQTT topic level. */
bool module_name_valid(const char *name);

const char *restart_policy_name(enum restart_policy p);

#endif
