/* Making a deployment the daemon's: from `berth deploy`, from the
 * deployment file at start and on SIGHUP, or the last applied one again.
 * A deployment is validated whole first; a bad one leaves the running one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/network.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

int deployment_apply(struct daemon *d, const char *text, size_t len, const char *what,
		     const char *source, struct deployment **applied, struct berr *err)
{
	struct deployment_policy pol = {.allow_privileged = d->cfg->allow_privileged};
	struct deployment *dep = NULL;
	if (deployment_parse(text, len, what, &pol, &dep, err) < 0)
		return -1;
	if (network_check_deployment(d, dep, err) < 0) {
		deployment_free(dep);
		return berr_wrap(err, "%s", what);
	}
	if (deployment_record(d, text, len, source, err) < 0) {
		deployment_free(dep);
		return berr_wrap(err, "%s", what);
	}
	deployment_free(d->dep);
	d->dep = dep;
	/* Records (and generation ids) exist before the hub config names them. */
	for (size_t i = 0; i < dep->n_modules; i++)
		if (!module_find(d, dep->modules[i].name) && !module_new(d, dep->modules[i].name))
			log_error("module %s: out of memory", dep->modules[i].name);
	for (size_t i = 0; i < dep->n_modules; i++)
		for (size_t w = 0; w < dep->modules[i].create.n_warnings; w++)
			log_warn("module %s: %s", dep->modules[i].name,
				 dep->modules[i].create.warnings[w]);
	log_info("applied deployment from %s: %zu module(s), %zu route(s)", what, dep->n_modules,
		 dep->n_routes);
	network_deployment_applied(d);
	struct berr herr;
	if (d->cfg->hub_enabled && hubproc_write_config(d, &herr) < 0)
		log_error("hub config: %s", herr.msg);
	d->reconcile_due = true;
	if (applied)
		*applied = dep;
	return 0;
}

/* The deployment file: NULL text when it cannot be read (err says why). */
static void read_deployment_file(struct daemon *d, char **text, size_t *len, char *what, size_t cap,
				 struct berr *err)
{
	snprintf(what, cap, "deployment %s", d->cfg->deployment_file);
	if (fs_read_file(d->cfg->deployment_file, DEPLOYMENT_MAX_BYTES, text, len, err) < 0)
		*text = NULL;
}

/* The deployment file when it changed since it was last applied (or nothing
 * was ever applied), else the last applied deployment, which may have come
 * from `berth deploy`. */
int deployment_initial(struct daemon *d, struct berr *err)
{
	cleanup_free char *saved = NULL;
	size_t saved_len = 0;
	char applied_hash[17];
	deployment_recorded(d, &saved, &saved_len, applied_hash);
	if (d->cfg->deployment_file && cloud_refusal(d))
		log_warn("deployment %s not applied: %s", d->cfg->deployment_file,
			 cloud_refusal(d));
	else if (d->cfg->deployment_file) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		char what[4200];
		struct berr e;
		read_deployment_file(d, &text, &len, what, sizeof(what), &e);
		char hash[17] = "";
		if (text)
			deployment_file_hash(text, len, hash);
		if (text && (!saved || strcmp(applied_hash, hash))) {
			if (deployment_apply(d, text, len, what, "file", NULL, &e) == 0)
				return 0;
			log_error("%s", e.msg);
		} else if (!text && !saved) {
			log_warn("%s", e.msg);
		}
	}
	if (!saved)
		return 0;
	return deployment_apply(d, saved, saved_len, "the last applied deployment", "saved", NULL,
				err);
}

void deployment_reload(struct daemon *d)
{
	if (cloud_refusal(d)) {
		log_warn("SIGHUP: the deployment file is not applied: %s", cloud_refusal(d));
		return;
	}
	if (!d->cfg->deployment_file) {
		log_info("SIGHUP: no deployment_file in the config; nothing to reload");
		return;
	}
	cleanup_free char *text = NULL;
	size_t len = 0;
	char what[4200];
	struct berr err;
	read_deployment_file(d, &text, &len, what, sizeof(what), &err);
	if (!text) {
		log_error("SIGHUP: %s; the running deployment stays", err.msg);
		return;
	}
	if (deployment_apply(d, text, len, what, "file", NULL, &err) < 0)
		log_error("refused %s; the running deployment stays", err.msg);
}
