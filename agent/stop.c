/* Stopping modules: a stop the daemon asks for and returns from at once
 * (the exit arrives on the shim's pidfd), forced when a shim outlives its
 * grace period; `berth restart`, answered through d->restart_done once the
 * module has stopped; removing an instance; stopping everything when the
 * daemon exits. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/daemon.h"
#include "agent/network.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "oci/oci.h"
#include "shim/shim.h"

/* A shim gets this much beyond the grace period to report an exit before
 * the daemon forces the stop. */
#define STOP_SLACK_MS 5000
/* When the daemon itself stops, it waits this much beyond the grace period
 * before it kills a module's cgroup itself. */
#define STOP_WAIT_SLACK_MS 1000

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
	m->stops++;
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

/* Waits until every module of ms[0..n) that is stopping has exited or
 * reached its deadline; those still there then are forced. */
static void wait_stopped(struct daemon *d, struct module_rt **ms, size_t n)
{
	for (;;) {
		struct pollfd pf[DEPLOYMENT_MAX_MODULES];
		size_t np = 0;
		int64_t now = boot_ms(), next = INT64_MAX;
		for (size_t i = 0; i < n; i++) {
			struct module_rt *m = ms[i];
			if (!m->stopping)
				continue;
			struct instance_state st = {.shim_pid = m->shim_pid};
			struct berr e;
			bool gone = m->pidfd >= 0
					? poll(&(struct pollfd){m->pidfd, POLLIN, 0}, 1, 0) > 0
					: shim_state_read(d->root, m->name, &st, &e) < 0 ||
					      !shim_alive(&st);
			if (gone || now >= m->stop_deadline_boot) {
				if (!gone)
					module_stop_force(d, m);
				module_unwatch_shim(d, m);
				m->stopping = false;
				continue;
			}
			if (m->stop_deadline_boot < next)
				next = m->stop_deadline_boot;
			if (m->pidfd >= 0 && np < ARRAY_SIZE(pf))
				pf[np++] = (struct pollfd){.fd = m->pidfd, .events = POLLIN};
		}
		if (next == INT64_MAX)
			return;
		/* Without pidfds (Linux < 5.3) the shims are looked at every 50 ms. */
		int64_t wait = next - now;
		if (np < n && wait > 50)
			wait = 50;
		poll(pf, np, (int)wait);
	}
}

/* Stops ms[0..n) together: every shim is asked at once, each module gets
 * its own grace period, and this returns when the last one is gone. */
static void stop_together(struct daemon *d, struct module_rt **ms, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ms[i]->shim_pid && module_stop_begin(d, ms[i], "the daemon is stopping"))
			ms[k++] = ms[i];
	/* The daemon's own stop: a shim gets its grace period and a second. */
	for (size_t i = 0; i < k; i++)
		if (!ms[i]->restart_requested)
			ms[i]->stop_deadline_boot = boot_ms() +
						    module_stop_grace(d, ms[i]->name) * 1000LL +
						    STOP_WAIT_SLACK_MS;
	wait_stopped(d, ms, k);
	for (size_t i = 0; i < k; i++) {
		ms[i]->status = RT_STOPPED;
		ms[i]->last_exit_ms = wall_ms();
		ms[i]->exited_boot = boot_ms();
		ms[i]->description[0] = '\0';
	}
}

void stop_all(struct daemon *d)
{
	for (size_t i = 0; i < d->n_mods; i++)
		module_restart_answer(d, d->mods[i], 500, "the daemon is stopping");
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i]->pull_pid > 0)
			kill(d->mods[i]->pull_pid, SIGTERM);
	/* Groups of one startupOrder in reverse order (later groups depend on
	 * earlier ones); the modules of a group together. The deployment lists
	 * modules sorted by startup order. */
	struct module_rt *group[DEPLOYMENT_MAX_MODULES];
	size_t n = d->dep ? d->dep->n_modules : 0;
	for (size_t end = n; end > 0;) {
		uint32_t order = d->dep->modules[end - 1].startup_order;
		size_t k = 0;
		for (; end > 0 && d->dep->modules[end - 1].startup_order == order; end--) {
			struct module_rt *m = module_find(d, d->dep->modules[end - 1].name);
			if (m && k < ARRAY_SIZE(group))
				group[k++] = m;
		}
		stop_together(d, group, k);
	}
	/* Modules no longer in the deployment, still stopping. */
	size_t k = 0;
	for (size_t i = 0; i < d->n_mods && k < ARRAY_SIZE(group); i++)
		if (d->mods[i]->shim_pid)
			group[k++] = d->mods[i];
	stop_together(d, group, k);
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
