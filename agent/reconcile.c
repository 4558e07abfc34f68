/* Desired (the applied deployment) against actual (the instances): pull,
 * create, start, stop, remove; the restart policy with edgeAgent's backoff;
 * startup order. Runs every reconcile interval and after every event. The
 * steps live in their own files: modules.c (the module table), pull_child.c,
 * instance_spec.c and stop.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/network.h"
#include "common/log.h"
#include "oci/oci.h"
#include "shim/shim.h"

/* What follows an exit the daemon saw (or found after its own restart):
 * `when` is the exit's wall-clock time as the shim recorded it (0: now);
 * `unhealthy`: the shim stopped it for failing its health checks. */
static void observe_exit(struct daemon *d, struct module_rt *m, int exit_code, int64_t when,
			 bool unhealthy)
{
	module_unwatch_shim(d, m);
	network_detach(d, m->name);
	m->exit_code = exit_code;
	m->last_exit_ms = when > 0 ? when : wall_ms();
	m->exited_boot = when > 0 ? boot_from_wall(when) : boot_ms();
	if (m->exited_boot < m->started_boot)
		m->exited_boot = m->started_boot;
	if (m->started_boot)
		m->ran_ms += m->exited_boot - m->started_boot;
	const struct deployment_module *dm = module_desired(d, m->name);
	bool asked = m->stopping;
	m->stopping = false;
	if (m->restart_requested) {
		/* Started again at once, as a new run: a user's restart is no
		 * crash, and it gives a failed module its restarts back. */
		m->restart_count = 0;
		m->status = RT_BACKOFF;
		m->next_start_boot = 0;
		m->done = false;
		snprintf(m->description, sizeof(m->description), "restarting");
		module_restart_answer(d, m, 200, NULL);
		records_save_or_log(d);
		return;
	}
	if (asked || !dm || !dm->run) {
		/* A stop the daemon asked for is not a failure: no restart policy. */
		m->status = RT_STOPPED;
		m->done = false;
		m->description[0] = '\0';
		m->status = RT_STOPPED;
		records_save_or_log(d);
		return;
	}
	if (m->started_boot && m->exited_boot - m->started_boot >= HEALTHY_RESET_MS)
		m->restart_count = 0;
	m->status = unhealthy ? status_after_unhealthy_stop(m->restart_count)
			      : status_after_exit(dm->restart, exit_code, m->restart_count);
	if (m->status == RT_BACKOFF) {
		int64_t delay = backoff_delay_ms(d->cfg->restart_backoff_unit_ms, m->restart_count);
		m->next_start_boot = m->exited_boot + delay;
		log_info("module %s %s %d; restart %u in %lld ms", m->name,
			 unhealthy ? "was unhealthy and stopped with" : "exited with", exit_code,
			 m->restart_count + 1, (long long)delay);
	} else {
		m->done = true;
		log_info("module %s exited with %d; %s (restartPolicy %s%s)", m->name, exit_code,
			 runtime_status_name(m->status), restart_policy_name(dm->restart),
			 m->restart_count >= RESTARTS_MAX ? ", too many restarts" : "");
	}
	m->description[0] = '\0';
	records_save_or_log(d);
}

void module_shim_exited(struct daemon *d, struct module_rt *m)
{
	struct instance_state st;
	struct berr err;
	int code = 255;
	int64_t when = 0;
	bool unhealthy = false;
	if (shim_state_read(d->root, m->name, &st, &err) == 0) {
		if (shim_alive(&st)) {
			/* A stale event (the descriptor number was reused) or a shim
			 * started again under our name: watch whichever is alive. */
			if (st.shim_pid != m->shim_pid) {
				module_unwatch_shim(d, m);
				module_watch_shim(d, m, st.shim_pid);
			}
			return;
		}
		code = st.status == INSTANCE_EXITED ? st.exit_code : 255;
		when = st.finished_at;
		unhealthy = st.stopped_unhealthy;
	} else {
		log_warn("module %s: %s", m->name, err.msg);
	}
	observe_exit(d, m, code, when, unhealthy);
	d->reconcile_due = true;
}

/* When the shim started, on the boot clock: /proc/<pid>/stat counts a
 * process's start in clock ticks since boot. */
static int64_t boot_of_ticks(int64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);
	return ticks > 0 && hz > 0 ? ticks * 1000 / hz : 0;
}

void reattach_all(struct daemon *d)
{
	bool rebooted =
	    d->boot_id[0] && d->records_boot_id[0] && strcmp(d->boot_id, d->records_boot_id);
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		m->token_refresh_ms = 0;
		struct instance_state st;
		struct berr err;
		if (!m->has_instance) {
			/* Its record was lost (a damaged modules.json) while its
			 * instance ran on: take the instance back, and create it
			 * again since what it was made from is unknown. */
			if (shim_state_read(d->root, m->name, &st, &err) < 0 || !shim_alive(&st))
				continue;
			log_warn("module %s: a running instance without a record; it will be "
				 "created again",
				 m->name);
			m->has_instance = true;
			m->config_hash[0] = '\0';
		}
		if (shim_state_read(d->root, m->name, &st, &err) == 0 && shim_alive(&st) &&
		    (st.status == INSTANCE_RUNNING || st.status == INSTANCE_CREATED) &&
		    module_watch_shim(d, m, st.shim_pid) == 0) {
			log_info("module %s: re-attached to running instance (shim %d)", m->name,
				 (int)st.shim_pid);
			/* Its workload socket is made anew in the directory it sees. */
			if (workload_module_open(d, m, &err) < 0)
				log_error("%s", err.msg);
			m->status = RT_RUNNING;
			m->started_here = true;
			if (!m->last_start_ms)
				m->last_start_ms = st.started_at;
			m->started_boot = boot_of_ticks(st.shim_start_time);
			if (!m->started_boot)
				m->started_boot = boot_from_wall(st.started_at);
			/* Its grace period, should it leave the deployment. */
			char path[4300];
			struct instance_spec *spec = NULL;
			snprintf(path, sizeof(path), "%s/instances/%s/spec.json", d->root, m->name);
			if (instance_spec_read(path, &spec, &err) == 0)
				m->stop_grace_sec = spec->stop_grace_sec;
			instance_spec_free(spec);
			continue;
		}
		if (m->status == RT_RUNNING && rebooted) {
			/* Not a failure: it ended with the system. It starts again at
			 * once, in place, and no restart is counted. */
			log_info("module %s: the system restarted since it ran; starting it again",
				 m->name);
			m->status = RT_UNKNOWN;
			m->next_start_boot = 0;
			m->done = false;
			continue;
		}
		if (m->status == RT_RUNNING) {
			/* It exited while no daemon was watching: the policy decides. */
			bool readable = shim_state_read(d->root, m->name, &st, &err) == 0 &&
					st.status == INSTANCE_EXITED;
			log_info("module %s exited while the daemon was down", m->name);
			observe_exit(d, m, readable ? st.exit_code : 255,
				     readable ? st.finished_at : 0,
				     readable && st.stopped_unhealthy);
		}
	}
	records_save_or_log(d);
}

static void module_drop(struct daemon *d, struct module_rt *m)
{
	if (m->pull_pid > 0)
		kill(m->pull_pid, SIGTERM);
	if (module_stop_begin(d, m, "removed from the deployment"))
		return; /* dropped once it has exited */
	module_restart_answer(d, m, 404, "the module was removed from the deployment");
	module_instance_destroy(d, m);
	workload_module_close(d, m);
	module_runtime_dir_remove(d, m->name);
	pull_files_remove(d, m->name);
	log_info("module %s removed", m->name);
	for (size_t i = 0; i < d->n_mods; i++)
		if (d->mods[i] == m) {
			memmove(&d->mods[i], &d->mods[i + 1],
				(d->n_mods - i - 1) * sizeof(*d->mods));
			d->n_mods--;
			break;
		}
	free(m);
	records_save_or_log(d);
}

static void start_failed(struct daemon *d, struct module_rt *m, const char *why)
{
	log_error("module %s: %s", m->name, why);
	/* A start that fails counts as a failed run for the restart policy. */
	m->last_start_ms = 0;
	m->started_boot = 0;
	observe_exit(d, m, 1, 0, false);
	snprintf(m->description, sizeof(m->description), "%.250s", why);
	records_save_or_log(d);
}

static void instance_start(struct daemon *d, struct module_rt *m,
			   const struct deployment_module *dm)
{
	struct berr err;
	struct oci_image *img = NULL;
	const char *ref = m->image_digest[0] ? m->image_digest : dm->image;
	/* Every attempt after an exit counts, failed starts included, so a
	 * module that cannot start ends up failed instead of retrying forever;
	 * a start `berth restart` asked for does not. */
	if (m->status == RT_BACKOFF && m->last_exit_ms) {
		if (!m->restart_requested)
			m->restart_count++;
		m->last_restart_ms = wall_ms();
	}
	m->restart_requested = false;
	m->starts++;
	if (!d->store) {
		start_failed(d, m, "the image store is not open");
		return;
	}
	if (oci_image_open(d->store, ref, &img, &err) < 0) {
		char why[BERR_MSG_MAX + 64];
		if (dm->pull == PULL_NEVER && !m->image_digest[0])
			snprintf(why, sizeof(why), "%s (imagePullPolicy is never)", err.msg);
		else
			snprintf(why, sizeof(why), "%s", err.msg);
		m->image_digest[0] = '\0'; /* pulled again on the next try */
		start_failed(d, m, why);
		return;
	}
	struct instance_spec *spec = module_instance_spec(d, m, dm, img, &err);
	if (!spec || network_attach(d, m->name, dm, spec, &err) < 0) {
		oci_image_free(img);
		instance_spec_free(spec);
		start_failed(d, m, err.msg);
		return;
	}
	/* The lease keeps gc away from the layers; it fails when a gc took them
	 * since the image was opened, and the image is then pulled again. */
	if (oci_lease_add(d->store, m->name, img->digest, &err) < 0) {
		oci_image_free(img);
		instance_spec_free(spec);
		m->image_digest[0] = '\0';
		start_failed(d, m, err.msg);
		return;
	}
	snprintf(m->image_digest, sizeof(m->image_digest), "%s", img->digest);
	if (module_token_refresh(d, m, &err) < 0 || workload_module_open(d, m, &err) < 0)
		log_error("%s", err.msg);
	oci_image_free(img);
	/* Recorded before the shim starts: a daemon killed right after still
	 * knows the instance is its own. */
	snprintf(m->config_hash, sizeof(m->config_hash), "%s", dm->config_hash);
	m->has_instance = true;
	records_save_or_log(d);
	pid_t shim = 0;
	m->stop_grace_sec = spec->stop_grace_sec;
	int rc = shim_start(d->root, spec, &shim, &err);
	instance_spec_free(spec);
	if (rc < 0) {
		start_failed(d, m, err.msg);
		return;
	}
	m->last_start_ms = wall_ms();
	m->started_boot = boot_ms();
	m->status = RT_RUNNING;
	m->started_here = true;
	m->done = false;
	m->description[0] = '\0';
	if (module_watch_shim(d, m, shim) < 0) {
		/* Gone already: the exit is read from its state below. */
		m->shim_pid = shim;
		module_shim_exited(d, m);
	}
	log_info("module %s started (shim %d)", m->name, (int)shim);
	records_save_or_log(d);
}

static void reconcile_module(struct daemon *d, const struct deployment_module *dm,
			     struct module_rt *m, bool gate_open, int64_t now)
{
	if (!m->has_instance && strcmp(m->image, dm->image))
		m->image_digest[0] = '\0'; /* pulled for an image no longer wanted */
	snprintf(m->image, sizeof(m->image), "%s", dm->image);
	if (m->stopping)
		return; /* the next step follows its exit */
	if (dm->run && !m->desired_since_boot)
		m->desired_since_boot = now;
	if (m->has_instance && strcmp(m->config_hash, dm->config_hash)) {
		if (module_stop_begin(d, m, "image, createOptions or env changed"))
			return;
		log_info("module %s: image, createOptions or env changed; creating it again",
			 m->name);
		module_instance_destroy(d, m);
		m->image_digest[0] = '\0';
		m->restart_count = 0;
		m->status = RT_UNKNOWN;
		m->done = false;
		m->next_start_boot = 0;
		records_save_or_log(d);
	}
	if (m->pull_pid)
		return;
	if (!dm->run) {
		if (module_stop_begin(d, m, "desired status stopped"))
			return;
		if (m->status != RT_STOPPED) {
			m->status = RT_STOPPED;
			m->done = false;
			records_save_or_log(d);
		}
		return;
	}
	if (m->shim_pid) {
		if (m->restart_count && now - m->started_boot >= HEALTHY_RESET_MS) {
			m->restart_count = 0;
			records_save_or_log(d);
		}
		struct berr err;
		if (m->token_refresh_ms <= wall_ms() && module_token_refresh(d, m, &err) < 0)
			log_error("%s", err.msg);
		return;
	}
	if (m->done)
		return;
	if (m->status == RT_BACKOFF && now < m->next_start_boot)
		return;
	if (!gate_open) {
		snprintf(m->description, sizeof(m->description),
			 "waiting for modules with a lower startupOrder");
		return;
	}
	if (!m->image_digest[0] && dm->pull == PULL_ON_CREATE) {
		pull_start(d, m, dm);
		return;
	}
	instance_start(d, m, dm);
}

void reconcile(struct daemon *d)
{
	d->reconcile_due = false;
	if (!d->dep || d->stopping)
		return;
	int64_t now = boot_ms();
	for (size_t i = d->n_mods; i-- > 0;)
		if (d->mods[i]->stopping && now >= d->mods[i]->stop_deadline_boot)
			module_stop_force(d, d->mods[i]);
	for (size_t i = d->n_mods; i-- > 0;)
		if (!deployment_module(d->dep, d->mods[i]->name))
			module_drop(d, d->mods[i]);
	bool gate_open = true, group_ready = true;
	uint32_t group = d->dep->n_modules ? d->dep->modules[0].startup_order : 0;
	for (size_t i = 0; i < d->dep->n_modules; i++) {
		const struct deployment_module *dm = &d->dep->modules[i];
		if (dm->startup_order != group) {
			/* Each group waits until every earlier one has started. */
			gate_open = gate_open && group_ready;
			group_ready = true;
			group = dm->startup_order;
		}
		struct module_rt *m = module_find(d, dm->name);
		if (!m && !(m = module_new(d, dm->name))) {
			log_error("module %s: out of memory", dm->name);
			continue;
		}
		reconcile_module(d, dm, m, gate_open, now);
		if (dm->run && !m->started_here && m->status != RT_FAILED)
			group_ready = false;
	}
}

int64_t reconcile_next_deadline(struct daemon *d)
{
	int64_t next = INT64_MAX, boot = boot_ms(), wall = wall_ms();
	for (size_t i = 0; i < d->n_mods; i++) {
		struct module_rt *m = d->mods[i];
		if (m->status == RT_BACKOFF && !m->pull_pid && m->next_start_boot < next)
			next = m->next_start_boot;
		if (m->stopping && m->stop_deadline_boot < next)
			next = m->stop_deadline_boot;
		if (m->shim_pid && m->token_refresh_ms) {
			int64_t t =
			    boot + (m->token_refresh_ms > wall ? m->token_refresh_ms - wall : 0);
			if (t < next)
				next = t;
		}
	}
	return next;
}
