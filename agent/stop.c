/* Stopping modules: a stop the daemon asks for and returns from at once
 * (the exit arrives on the shim's pidfd), forced when a shim outlives its
 * grace period; `berth restart`, answered through d->restart_done once the
 * module has stopped; removing an instance; stopping everything when the
 * daemon exits. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/network.h"
#include "common/log.h"
#include "oci/oci.h"
#include "shim/shim.h"

/* A shim gets this much beyond the grace period to report an exit before
 * the daemon forces the stop. */
#define STOP_SLACK_MS 5000

void module_restart_answer(struct daemon *d, struct module_rt *m, int status, const char *error)
{
	if (m->restart_waiter >= 0 && d->restart_done)
		d->restart_done(m->restart_waiter, status, error);
	m->restart_waiter = -1;
}

/* Stops the instance and waits for it: for the daemon's own exit only. */
void module_stop_wait(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	if (!m->has_instance)
		return;
	if (shim_stop(d->root, m->name, module_stop_grace(d, m->name), &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	module_unwatch_shim(d, m);
	network_detach(d, m->name);
	m->stopping = false;
}

/* Asks the module's shim to stop its instance and returns at once, so a
 * module taking its grace period holds up nothing else; the exit arrives on
 * the pidfd. True while the instance still runs. */
bool module_stop_begin(struct daemon *d, struct module_rt *m, const char *why)
{
	if (!m->shim_pid)
		return false;
	if (m->stopping)
		return true;
	int grace = module_stop_grace(d, m->name);
	struct berr err;
	log_info("module %s: stopping (%s)", m->name, why);
	if (shim_stop_request(d->root, m->name, grace, &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	m->stopping = true;
	m->stop_deadline_boot = boot_ms() + grace * 1000LL + STOP_SLACK_MS;
	snprintf(m->description, sizeof(m->description), "stopping");
	return true;
}

/* A shim that outlived its grace period: force it (this waits, briefly). */
void module_stop_force(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	log_warn("module %s: still running %d s after the stop request; killing it", m->name,
		 module_stop_grace(d, m->name));
	if (shim_stop(d->root, m->name, 0, &err) < 0)
		log_error("module %s: stop: %s", m->name, err.msg);
	m->stop_deadline_boot = boot_ms() + STOP_SLACK_MS;
	module_shim_exited(d, m);
}

/* Stops and removes the instance: directory (upper, work, logs), cgroup,
 * lease. The identity (generation id, token directory) is kept. */
void module_instance_destroy(struct daemon *d, struct module_rt *m)
{
	struct berr err;
	module_stop_wait(d, m);
	if (m->has_instance && shim_remove(d->root, m->name, &err) < 0)
		log_error("module %s: remove: %s", m->name, err.msg);
	if (d->store && oci_lease_remove(d->store, m->name, &err) < 0)
		log_warn("module %s: lease: %s", m->name, err.msg);
	m->has_instance = false;
}

int module_restart(struct daemon *d, const char *name, int waiter, struct berr *err)
{
	struct module_rt *m = module_find(d, name);
	const struct deployment_module *dm = module_desired(d, name);
	if (!m || !dm)
		return berr_set(err, 0, "module %s is not in the deployment", name);
	if (!dm->run)
		return berr_set(err, 0, "module %s has desired status stopped", name);
	if (m->shim_pid) {
		if (m->restart_waiter >= 0)
			return berr_set(err, 0, "module %s is restarting already", name);
		m->restart_requested = true;
		module_stop_begin(d, m, "restart requested");
		m->restart_waiter = waiter;
		return waiter >= 0 ? 1 : 0;
	}
	log_info("module %s: restart requested", name);
	m->restart_requested = true;
	m->restart_count = 0;
	m->done = false;
	m->status = RT_BACKOFF;
	m->next_start_boot = 0;
	records_save_or_log(d);
	d->reconcile_due = true;
	return 0;
}

void stop_all(struct daemon *d)
{
	for (size_t i = 0; i < d->n_mods; i++)
		module_restart_answer(d, d->mods[i], 500, "the daemon is stopping");
	/* Reverse startup order: later groups depend on earlier ones. */
	size_t n = d->dep ? d->dep->n_modules : 0;
	for (size_t i = n; i-- > 0;) {
		struct module_rt *m = module_find(d, d->dep->modules[i].name);
		if (m && m->shim_pid) {
			log_info("module %s: stopping", m->name);
			module_stop_wait(d, m);
			m->status = RT_STOPPED;
			m->last_exit_ms = wall_ms();
			m->exited_boot = boot_ms();
		}
	}
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		if (m->shim_pid) {
			module_stop_wait(d, m);
			m->status = RT_STOPPED;
		}
		if (m->pull_pid > 0)
			kill(m->pull_pid, SIGTERM);
	}
	records_save_or_log(d);
}

void stop_pending(struct daemon *d)
{
	bool any = false;
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		if (m->shim_pid && m->stopping) {
			module_restart_answer(d, m, 500, "the daemon is stopping");
			module_stop_wait(d, m);
			m->status = RT_STOPPED;
			any = true;
		}
	}
	if (any)
		records_save_or_log(d);
}
