/* The hub as a child process: the daemon owns its listening socket (so the
 * socket survives hub restarts), writes its config from the daemon config
 * and the deployment, restarts it with backoff when it dies and sends SIGHUP
 * when the config changes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "agent/identities.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sock.h"

#define HUB_BACKOFF_MAX_MS 60000
#define HUB_LISTEN_FD	   3

/* The hub's backoff follows the modules' restart_backoff_unit_ms, a tenth
 * of it (1 s by default, doubling up to a minute); a hub that ran sixty
 * units (a minute) was healthy. Messages wait while it is down. */
static int64_t hub_backoff_unit(const struct daemon *d)
{
	int64_t unit = d->cfg->restart_backoff_unit_ms / 10;
	return unit < 10 ? 10 : unit;
}

static void run_path(struct daemon *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->run, name);
}

int hubproc_setup(struct daemon *d, struct berr *err)
{
	char shared[4200], sock[4300], link_path[4300];
	run_path(d, SHARED_DIR, shared, sizeof(shared));
	snprintf(sock, sizeof(sock), "%s/" HUB_SOCKET, shared);
	run_path(d, HUB_SOCKET, link_path, sizeof(link_path));
	/* Modules run as any user; the hub authenticates them by token and cgroup. */
	int fd = unix_listen(sock, 0666, 64, 0, "hub socket", err);
	if (fd < 0)
		return -1;
	unlink(link_path);
	if (link(sock, link_path) < 0)
		log_warn("hub socket: link %s: %s", link_path, strerror(errno));
	d->hub.listen_fd = fd;
	d->hub.pid = 0;
	d->hub.next_start_boot = 0;
	return hubproc_write_config(d, err);
}

int hubproc_write_config(struct daemon *d, struct berr *err)
{
	yajl_gen g = json_gen_new(true);
	if (!g)
		return berr_set(err, ENOMEM, "hub config");
	char sock[4300], ctl[4300], state[4300];
	run_path(d, HUB_SOCKET, sock, sizeof(sock));
	run_path(d, HUB_CONTROL_SOCKET, ctl, sizeof(ctl));
	if (d->cfg->hub_store)
		snprintf(state, sizeof(state), "%s", d->cfg->hub_store);
	else
		snprintf(state, sizeof(state), "%s/hub", d->root);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "device_id", d->cfg->device_id);
	json_gen_key_str(g, "iothub_hostname", d->cfg->iothub_hostname);
	json_gen_key_str(g, "device_key", d->cfg->device_key);
	json_gen_key_str(g, "socket", sock);
	json_gen_key_str(g, "control_socket", ctl);
	json_gen_key_str(g, "state_dir", state);
	if (d->cfg->hub_listen_tcp)
		json_gen_key_str(g, "listen_tcp", d->cfg->hub_listen_tcp);
	if (d->cfg->hub_tls_cert) {
		json_gen_key_str(g, "tls_cert", d->cfg->hub_tls_cert);
		json_gen_key_str(g, "tls_key", d->cfg->hub_tls_key);
	}
	if (d->cfg->hub_max_packet)
		json_gen_key_int(g, "max_packet", d->cfg->hub_max_packet);
	json_gen_key_int(g, "store_max_bytes", d->cfg->hub_max_store_bytes);
	json_gen_key_int(g, "store_limits_max_bytes", d->dep ? d->dep->store_max_bytes : 0);
	json_gen_key_int(g, "min_free_percent", d->cfg->hub_min_free_percent);
	json_gen_key_str(g, "store_full", d->cfg->hub_store_drop_oldest ? "drop-oldest" : "reject");
	gateway_hub_config(d, g);
	if (d->cfg->upstream_url) {
		json_gen_str(g, "upstream");
		yajl_gen_map_open(g);
		json_gen_key_str(g, "url", d->cfg->upstream_url);
		if (d->cfg->upstream_ca_file)
			json_gen_key_str(g, "ca_file", d->cfg->upstream_ca_file);
		if (d->cfg->deployments_cloud)
			json_gen_key_bool(g, "twins", true);
		yajl_gen_map_close(g);
		json_gen_key_bool(g, "notify_parent", d->cfg->deployments_cloud);
	}
	json_gen_key_int(g, "default_ttl_secs", d->dep ? d->dep->ttl_secs : 7200);
	json_gen_str(g, "routes");
	yajl_gen_map_open(g);
	for (size_t i = 0; d->dep && i < d->dep->n_routes; i++) {
		const struct deployment_route *r = &d->dep->routes[i];
		json_gen_str(g, r->name);
		yajl_gen_map_open(g);
		json_gen_key_str(g, "route", r->text);
		if (r->priority <= 9)
			json_gen_key_int(g, "priority", r->priority);
		if (r->ttl_secs)
			json_gen_key_int(g, "timeToLiveSecs", r->ttl_secs);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	json_gen_str(g, "modules");
	yajl_gen_map_open(g);
	for (size_t i = 0; d->dep && i < d->dep->n_modules; i++) {
		const struct deployment_module *dm = &d->dep->modules[i];
		struct module_rt *m = module_find(d, dm->name);
		json_gen_str(g, dm->name);
		yajl_gen_map_open(g);
		json_gen_key_str(g, "generation_id", m ? m->generation_id : "");
		if (d->cfg->upstream_url)
			json_gen_key_bool(g, "identity_ready",
					  m && identity_ready(d, dm->name, m->generation_id));
		if (dm->desired_twin) {
			cleanup_yajl yajl_val twin = NULL;
			struct berr e;
			json_gen_str(g, "desired");
			if (json_parse(dm->desired_twin, strlen(dm->desired_twin), 1024 * 1024,
				       "twin", &twin, &e) == 0)
				json_gen_val(g, twin);
			else
				yajl_gen_null(g);
		}
		yajl_gen_map_close(g);
	}
	/* With the cloud's deployments, the hub keeps the twins of $edgeAgent
	 * and $edgeHub (the deployment) connected too. */
	static const char *const system_ids[] = {"$edgeAgent", "$edgeHub"};
	for (size_t i = 0; d->cfg->deployments_cloud && i < 2; i++) {
		json_gen_str(g, system_ids[i]);
		yajl_gen_map_open(g);
		json_gen_key_str(g, "generation_id", IDENTITY_SYSTEM_GENERATION);
		json_gen_key_bool(g, "identity_ready",
				  identity_ready(d, system_ids[i], IDENTITY_SYSTEM_GENERATION));
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	char path[4300];
	run_path(d, "hub.json", path, sizeof(path));
	if (json_gen_write_file(g, path, 0600, "hub config", err) < 0)
		return -1;
	if (d->hub.pid > 0)
		kill(d->hub.pid, SIGHUP);
	return 0;
}

static void start(struct daemon *d)
{
	char cfg[4300], fdarg[16];
	run_path(d, "hub.json", cfg, sizeof(cfg));
	snprintf(fdarg, sizeof(fdarg), "%d", HUB_LISTEN_FD);
	const char *argv[] = {berth_self_exe(), "--root", d->root,	 "--run", d->run, "hub",
			      "--config",	cfg,	  "--listen-fd", fdarg,	  NULL};
	pid_t pid = daemon_spawn((char *const *)argv, -1, -1, d->hub.listen_fd, true);
	if (pid < 0) {
		log_error("hub: cannot start: %s", strerror(errno));
		d->hub.next_start_boot = boot_ms() + hub_backoff_unit(d);
		return;
	}
	d->hub.pid = pid;
	d->hub.started_boot = boot_ms();
	log_info("hub started (pid %d)", (int)pid);
}

void hubproc_tick(struct daemon *d)
{
	identities_tick(d);
	if (!d->cfg->hub_enabled || d->stopping || d->hub.pid > 0 || d->hub.listen_fd < 0)
		return;
	if (boot_ms() >= d->hub.next_start_boot)
		start(d);
}

void hubproc_exited(struct daemon *d, int status)
{
	int64_t now = boot_ms();
	d->hub.pid = 0;
	if (d->stopping)
		return;
	if (now - d->hub.started_boot >= 60 * hub_backoff_unit(d))
		d->hub.restart_count = 0;
	int64_t delay = hub_backoff_unit(d);
	for (unsigned i = 0; i < d->hub.restart_count && delay < HUB_BACKOFF_MAX_MS; i++)
		delay *= 2;
	if (delay > HUB_BACKOFF_MAX_MS)
		delay = HUB_BACKOFF_MAX_MS;
	d->hub.restart_count++;
	d->hub.next_start_boot = now + delay;
	if (WIFSIGNALED(status))
		log_error("hub killed by signal %d; restarting in %lld ms", WTERMSIG(status),
			  (long long)delay);
	else
		log_error("hub exited with %d; restarting in %lld ms", WEXITSTATUS(status),
			  (long long)delay);
}

void hubproc_shutdown(struct daemon *d)
{
	if (d->hub.pid <= 0)
		return;
	kill(d->hub.pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		int st;
		if (waitpid(d->hub.pid, &st, WNOHANG) == d->hub.pid) {
			d->hub.pid = 0;
			return;
		}
		usleep(100 * 1000);
	}
	kill(d->hub.pid, SIGKILL);
	waitpid(d->hub.pid, NULL, 0);
	d->hub.pid = 0;
}
