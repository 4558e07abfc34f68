/* Module identities: /devices/<device>/modules/<name>, a generation id that
 * is new each time a module is created from nothing, the module key derived
 * from the device key and that generation id, and the token file each
 * instance reads at /run/berth/module/token. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/daemon.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sas.h"

void generation_id_new(char out[GENERATION_ID_LEN + 1])
{
	unsigned char raw[GENERATION_ID_LEN / 2];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No entropy source at all: time and pid still make it unique here. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			snprintf(out, GENERATION_ID_LEN + 1, "%016llx%08x%08x",
				 (unsigned long long)ts.tv_sec, (unsigned)ts.tv_nsec,
				 (unsigned)getpid());
			return;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int module_token(struct daemon *d, const struct module_rt *m, int64_t ttl_secs, char *out,
		 size_t cap, struct berr *err)
{
	char key[SAS_KEY_B64_MAX], resource[SAS_RESOURCE_MAX];
	if (sas_derive_module_key(d->cfg->device_key, m->name, m->generation_id, key, err) < 0)
		return berr_wrap(err, "module %s", m->name);
	if (sas_resource(d->cfg->iothub_hostname, d->cfg->device_id, m->name, resource,
			 sizeof(resource)) < 0)
		return berr_set(err, ENAMETOOLONG, "module %s: identity", m->name);
	int rc = sas_token_make(key, resource, (int64_t)time(NULL) + ttl_secs, out, cap, err);
	explicit_bzero(key, sizeof(key));
	return rc < 0 ? berr_wrap(err, "module %s: token", m->name) : 0;
}

int module_runtime_dir(struct daemon *d, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/modules/%s", d->run, name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

void module_runtime_dir_remove(struct daemon *d, const char *name)
{
	char dir[4200];
	struct berr err;
	if (module_runtime_dir(d, name, dir, sizeof(dir)) == 0 && fs_remove_tree(dir, &err) < 0)
		log_warn("module %s: %s", name, err.msg);
}

int module_token_refresh(struct daemon *d, struct module_rt *m, struct berr *err)
{
	char dir[4200], parent[4200];
	snprintf(parent, sizeof(parent), "%s/modules", d->run);
	if (module_runtime_dir(d, m->name, dir, sizeof(dir)) < 0)
		return berr_set(err, ENAMETOOLONG, "module %s: runtime directory", m->name);
	/* The parent is root's alone; each module's directory is bind-mounted
	 * into that module only, readable whatever user the module runs as. */
	if (fs_mkdir_p(parent, 0700, err) < 0 || fs_mkdir_p(dir, 0755, err) < 0)
		return berr_wrap(err, "module %s", m->name);
	chmod(parent, 0700);
	char token[SAS_TOKEN_MAX];
	int64_t ttl = d->cfg->token_ttl_secs;
	if (module_token(d, m, ttl, token, sizeof(token), err) < 0)
		return -1;
	char path[4300];
	snprintf(path, sizeof(path), "%s/token", dir);
	size_t len = strlen(token);
	token[len++] = '\n';
	int rc = fs_write_file_atomic(path, token, len, 0444, err);
	explicit_bzero(token, sizeof(token));
	if (rc < 0)
		return berr_wrap(err, "module %s", m->name);
	/* Renewed at half-life, so a module reading it late still has time. */
	m->token_refresh_ms = wall_ms() + ttl * 1000 / 2;
	return 0;
}
