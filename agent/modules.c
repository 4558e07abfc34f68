/* The daemon's table of the modules it manages (struct module_rt, see
 * daemon.h), and the shim each module's instance runs under, watched with a
 * pidfd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/daemon.h"

struct module_rt *module_find(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_mods; i++)
		if (!strcmp(d->mods[i]->name, name))
			return d->mods[i];
	return NULL;
}

struct module_rt *module_add(struct daemon *d, const char *name)
{
	struct module_rt *m = calloc(1, sizeof(*m));
	struct module_rt **mods = realloc(d->mods, (d->n_mods + 1) * sizeof(*mods));
	if (mods)
		d->mods = mods;
	if (!m || !mods) {
		free(m);
		return NULL;
	}
	d->mods[d->n_mods++] = m;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->pidfd = -1;
	m->workload_fd = -1;
	m->restart_waiter = -1;
	m->status = RT_UNKNOWN;
	return m;
}

struct module_rt *module_new(struct daemon *d, const char *name)
{
	struct module_rt *m = module_add(d, name);
	/* A module created from nothing gets a new identity generation: tokens
	 * made for an earlier module of the same name stop working. */
	if (m)
		generation_id_new(m->generation_id);
	return m;
}

const struct deployment_module *module_desired(struct daemon *d, const char *name)
{
	return d->dep ? deployment_module(d->dep, name) : NULL;
}

int module_stop_grace(struct daemon *d, const char *name)
{
	const struct deployment_module *dm = module_desired(d, name);
	if (dm && dm->create.stop_timeout >= 0)
		return dm->create.stop_timeout;
	struct module_rt *m = module_find(d, name);
	if (!dm && m && m->stop_grace_sec > 0)
		return m->stop_grace_sec;
	return (int)d->cfg->stop_grace_secs;
}

void module_unwatch_shim(struct daemon *d, struct module_rt *m)
{
	if (m->pidfd >= 0) {
		daemon_unwatch_fd(d, m->pidfd);
		close(m->pidfd);
		m->pidfd = -1;
	}
	m->shim_pid = 0;
}

int module_watch_shim(struct daemon *d, struct module_rt *m, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	m->shim_pid = pid;
	m->pidfd = fd;
	daemon_watch_fd(d, fd, TAG_PIDFD);
	return 0;
}
