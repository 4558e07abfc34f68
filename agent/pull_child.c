/* Pulls run as `berth pull` children so the daemon never maps the HTTP and
 * archive libraries; their output goes to files under <run>/pulls, read
 * when they exit. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#define PULL_OUTPUT_MAX 4096

static void pull_files(struct daemon *d, const char *name, char *out, size_t cap,
		       const char *suffix)
{
	snprintf(out, cap, "%s/pulls/%s.%s", d->run, name, suffix);
}

void pull_files_remove(struct daemon *d, const char *name)
{
	static const char *const sfx[] = {"out", "err", "json"};
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		char p[4300];
		pull_files(d, name, p, sizeof(p), sfx[i]);
		unlink(p);
	}
}

/* Credentials for the image's registry: the deployment's
 * registryCredentials first, then the daemon config's registries. */
static int write_pull_config(struct daemon *d, const struct deployment_module *dm, const char *path,
			     bool *insecure, bool *written)
{
	char host[HOSTNAME_MAX + 1];
	image_ref_registry(dm->image, host, sizeof(host));
	const struct registry_cred *c = agent_config_registry(d->cfg, dm->image);
	const struct registry_cred *dc = NULL;
	for (size_t i = 0; d->dep && i < d->dep->n_registries; i++)
		if (!strcmp(d->dep->registries[i].host, host))
			dc = &d->dep->registries[i];
	*insecure = c && c->insecure;
	*written = false;
	const char *user = dc ? dc->username : c ? c->username : NULL;
	const char *pass = dc ? dc->password : c ? c->password : NULL;
	const char *ca = c ? c->ca_file : NULL;
	if (!user && !ca && !*insecure)
		return 0;
	yajl_gen g = json_gen_new(false);
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_str(g, "registries");
	yajl_gen_map_open(g);
	json_gen_str(g, host);
	yajl_gen_map_open(g);
	if (*insecure)
		json_gen_key_bool(g, "insecure", true);
	if (user) {
		json_gen_key_str(g, "username", user);
		json_gen_key_str(g, "password", pass);
	}
	if (ca)
		json_gen_key_str(g, "ca_file", ca);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	struct berr err;
	if (json_gen_write_file(g, path, 0600, "pull configuration", &err) < 0)
		return -1;
	*written = true;
	return 0;
}

/* Pulls run as `berth pull` children so the daemon never maps the HTTP and
 * archive libraries; their output goes to files read when they exit. */
void pull_start(struct daemon *d, struct module_rt *m, const struct deployment_module *dm)
{
	char dir[4200], out[4300], errp[4300], cfgp[4300];
	snprintf(dir, sizeof(dir), "%s/pulls", d->run);
	struct berr err;
	if (fs_mkdir_p(dir, 0700, &err) < 0) {
		log_error("module %s: %s", m->name, err.msg);
		return;
	}
	pull_files(d, m->name, out, sizeof(out), "out");
	pull_files(d, m->name, errp, sizeof(errp), "err");
	pull_files(d, m->name, cfgp, sizeof(cfgp), "json");
	bool insecure = false, with_config = false;
	if (write_pull_config(d, dm, cfgp, &insecure, &with_config) < 0) {
		log_error("module %s: cannot write the pull configuration %s", m->name, cfgp);
		return;
	}
	cleanup_close int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cleanup_close int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0 || efd < 0) {
		log_error("module %s: cannot create %s", m->name, out);
		return;
	}
	const char *argv[12];
	size_t n = 0;
	argv[n++] = berth_self_exe();
	argv[n++] = "--root";
	argv[n++] = d->root;
	argv[n++] = "pull";
	if (insecure)
		argv[n++] = "--insecure";
	if (with_config) {
		argv[n++] = "--config";
		argv[n++] = cfgp;
	}
	argv[n++] = dm->image;
	argv[n] = NULL;
	pid_t pid = daemon_spawn((char *const *)argv, ofd, efd, -1, false);
	if (pid < 0) {
		log_error("module %s: cannot start berth pull: %s", m->name, strerror(errno));
		return;
	}
	m->pull_pid = pid;
	snprintf(m->pulling, sizeof(m->pulling), "%s", dm->image);
	snprintf(m->description, sizeof(m->description), "pulling %.200s", dm->image);
	log_info("module %s: pulling %s", m->name, dm->image);
}

/* Last non-empty line of a small file. */
static void last_line(const char *path, char *out, size_t cap)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	out[0] = '\0';
	if (fs_read_file(path, 1024 * 1024, &text, &len, &err) < 0)
		return;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	snprintf(out, cap, "%s", nl ? nl + 1 : text);
}

void pull_child_exited(struct daemon *d, pid_t pid, int status)
{
	struct module_rt *m = NULL;
	for (size_t i = 0; i < d->n_mods && !m; i++)
		if (d->mods[i]->pull_pid == pid)
			m = d->mods[i];
	if (!m)
		return;
	m->pull_pid = 0;
	char out[4300], errp[4300], line[PULL_OUTPUT_MAX];
	pull_files(d, m->name, out, sizeof(out), "out");
	pull_files(d, m->name, errp, sizeof(errp), "err");
	last_line(out, line, sizeof(line));
	const struct deployment_module *dm = module_desired(d, m->name);
	if (dm && strcmp(dm->image, m->pulling)) {
		/* The deployment changed the image meanwhile: pull the new one. */
		log_info("module %s: image changed while %s was pulled", m->name, m->pulling);
		m->description[0] = '\0';
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && digest_is_valid(line)) {
		snprintf(m->image_digest, sizeof(m->image_digest), "%s", line);
		m->description[0] = '\0';
		if (m->pull_failed && m->status == RT_BACKOFF)
			m->status = RT_UNKNOWN; /* the failed pulls were counted already */
		m->pull_failed = false;
		log_info("module %s: pulled %s (%s)", m->name, dm ? dm->image : "?", line);
	} else {
		last_line(errp, line, sizeof(line));
		if (!line[0])
			snprintf(line, sizeof(line), "berth pull ended with status %d", status);
		snprintf(m->description, sizeof(m->description), "%.250s", line);
		log_error("module %s: %s", m->name, line);
		m->pull_failed = true;
		/* Retried with the same backoff as a crash. */
		m->status = RT_BACKOFF;
		m->last_exit_ms = wall_ms();
		m->exited_boot = boot_ms();
		m->next_start_boot =
		    m->exited_boot +
		    backoff_delay_ms(d->cfg->restart_backoff_unit_ms, m->restart_count);
		if (m->restart_count < RESTARTS_MAX)
			m->restart_count++;
		else {
			m->status = RT_FAILED;
			m->done = true;
		}
		records_save_or_log(d);
	}
	pull_files_remove(d, m->name);
	d->reconcile_due = true;
}
