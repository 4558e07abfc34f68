/* Private to agent/: Docker create options (the `createOptions` string of a module) as berth
 * maps them onto an instance. Parsed and validated when a deployment is
 * validated; applied when the instance is started, on top of the image's
 * config. Keys berth cannot honour produce one warning each. */
#ifndef BERTH_AGENT_CREATEOPTIONS_H
#define BERTH_AGENT_CREATEOPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/healthcheck.h"
#include "agent/jpath.h"
#include "agent/netoptions.h"
#include "common/err.h"
#include "shim/shim.h"

#define CREATE_OPTIONS_MAX	    (64 * 1024) /* 99 chunks of 512 fit well below */
#define CREATE_OPTIONS_WARNINGS_MAX 32

struct create_options {
	char **env;	   /* "K=V" */
	char **cmd;	   /* NULL: the image's (unless entrypoint is set) */
	char **entrypoint; /* NULL: the image's */
	char *working_dir;
	char *user;
	char *hostname;
	char **labels; /* "K=V", kept for `berth list --json` */

	struct bind_mount *binds;
	size_t n_binds;
	struct device_rule *devices;
	size_t n_devices;

	struct net_options net; /* NetworkMode, PortBindings, Dns, ExtraHosts, ... */
	bool readonly_rootfs;
	bool privileged;
	int64_t memory, memory_swap, nano_cpus, cpu_shares, cpu_period, cpu_quota, pids_limit;
	int stop_timeout; /* -1: unset */
	char **cap_add;
	char **cap_drop;
	struct healthcheck health; /* Healthcheck; health.given when present */

	char *warnings[CREATE_OPTIONS_WARNINGS_MAX];
	size_t n_warnings;
};

/* Parses `json` (len bytes). `path` is where the options sit in the manifest,
 * for errors ("$...settings.createOptions: HostConfig.Binds[0]: ..."). */
NODISCARD int create_options_parse(const char *json, size_t len, const struct jpath *path,
				   struct create_options *out, struct berr *err);
void create_options_clear(struct create_options *co);
/* Adds a warning (at most CREATE_OPTIONS_WARNINGS_MAX are kept). */
void create_options_warn(struct create_options *co, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills the instance fields that come from create options: args from
 * Entrypoint/Cmd over the image's (image_entrypoint, image_cmd may be NULL),
 * cwd, user, hostname, binds, devices, resources and capabilities.
 * Environment is merged by the caller, the network by agent/network.c. */
NODISCARD int create_options_apply(const struct create_options *co, char *const *image_entrypoint,
				   char *const *image_cmd, struct instance_spec *spec,
				   struct berr *err);

#endif
