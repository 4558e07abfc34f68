/* `berth run`: one instance of an image in the foreground. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/command.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strv.h"
#include "oci/oci.h"
#include "shim/foreground.h"
#include "shim/instance.h"
#include "shim/state.h"

#define RUN_USAGE                                                                                  \
	"run [--rm] [--name N] [-e K=V] [-v SRC:DST[:ro]] [--memory BYTES] [--memory-swap BYTES] " \
	"[--pids-limit N] [--cpus F] [--cpu-shares N] [--network host|none] [--read-only] "        \
	"[--user U[:G]] [--workdir DIR] [--entrypoint PROG] [--hostname H] [--cap-add C] "         \
	"[--cap-drop C] [--device HOST[:INSIDE[:rwm]]] [--userns] [--privileged] [--insecure] "    \
	"REF [CMD...]"

/* Exit statuses of the run itself, as docker and podman use them. */
enum { EXIT_RUN_FAILED = 125, EXIT_CANNOT_EXEC = 126, EXIT_NOT_FOUND = 127 };

struct run_opts {
	bool rm, readonly, userns, privileged, insecure;
	const char *name, *user, *workdir, *entrypoint, *hostname;
	enum net_mode network;
	int64_t memory, memory_swap, pids, cpu_shares;
	double cpus;
	char **env, **cap_add, **cap_drop, **volumes, **devices;
};

static int usage_error(const char *option, const char *arg, const char *want)
{
	fprintf(stderr, "berth: run: %s \"%s\": %s\n", option, arg, want);
	return EXIT_RUN_FAILED;
}

/* "64m", "1g", "1048576": bytes (k, m, g are powers of 1024). */
static int parse_bytes(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	double mul = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'b':
		mul = 1;
		break;
	case 'k':
		mul = 1024.0;
		break;
	case 'm':
		mul = 1024.0 * 1024;
		break;
	case 'g':
		mul = 1024.0 * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2]))
		return -1;
	v *= mul;
	if (v > 9.0e18)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	enum {
		O_RM = 256,
		O_NAME,
		O_MEMORY,
		O_SWAP,
		O_PIDS,
		O_CPUS,
		O_SHARES,
		O_NETWORK,
		O_RO,
		O_USER,
		O_WORKDIR,
		O_ENTRYPOINT,
		O_HOSTNAME,
		O_CAPADD,
		O_CAPDROP,
		O_DEVICE,
		O_USERNS,
		O_PRIV,
		O_INSECURE,
	};
	static const struct option longopts[] = {
	    {"rm", no_argument, NULL, O_RM},
	    {"name", required_argument, NULL, O_NAME},
	    {"env", required_argument, NULL, 'e'},
	    {"volume", required_argument, NULL, 'v'},
	    {"memory", required_argument, NULL, O_MEMORY},
	    {"memory-swap", required_argument, NULL, O_SWAP},
	    {"pids-limit", required_argument, NULL, O_PIDS},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"cpu-shares", required_argument, NULL, O_SHARES},
	    {"network", required_argument, NULL, O_NETWORK},
	    {"read-only", no_argument, NULL, O_RO},
	    {"user", required_argument, NULL, O_USER},
	    {"workdir", required_argument, NULL, O_WORKDIR},
	    {"entrypoint", required_argument, NULL, O_ENTRYPOINT},
	    {"hostname", required_argument, NULL, O_HOSTNAME},
	    {"cap-add", required_argument, NULL, O_CAPADD},
	    {"cap-drop", required_argument, NULL, O_CAPDROP},
	    {"device", required_argument, NULL, O_DEVICE},
	    {"userns", no_argument, NULL, O_USERNS},
	    {"privileged", no_argument, NULL, O_PRIV},
	    {"insecure", no_argument, NULL, O_INSECURE},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "+e:v:u:w:", longopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case O_RM:
			o->rm = true;
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case 'e':
			rc = strv_push(&o->env, optarg);
			break;
		case 'v':
			rc = strv_push(&o->volumes, optarg);
			break;
		case O_MEMORY:
			if (parse_bytes(optarg, &o->memory) < 0 || o->memory < 4 * 1024 * 1024)
				return usage_error("--memory", optarg, "a size of at least 4m");
			break;
		case O_SWAP:
			if (!strcmp(optarg, "-1"))
				o->memory_swap = -1;
			else if (parse_bytes(optarg, &o->memory_swap) < 0)
				return usage_error("--memory-swap", optarg, "a size, or -1");
			break;
		case O_PIDS:
			if (parse_int(optarg, 1, 4194304, &o->pids) < 0)
				return usage_error("--pids-limit", optarg, "a number of processes");
			break;
		case O_CPUS: {
			char *end;
			o->cpus = strtod(optarg, &end);
			if (end == optarg || *end || o->cpus < 0.01 || o->cpus > 1024)
				return usage_error("--cpus", optarg,
						   "a number of CPUs such as 0.5");
			break;
		}
		case O_SHARES:
			if (parse_int(optarg, 2, 262144, &o->cpu_shares) < 0)
				return usage_error("--cpu-shares", optarg, "2..262144");
			break;
		case O_NETWORK:
			if (!strcmp(optarg, "host"))
				o->network = NET_HOST;
			else if (!strcmp(optarg, "none"))
				o->network = NET_NONE;
			else
				return usage_error("--network", optarg, "host or none");
			break;
		case O_RO:
			o->readonly = true;
			break;
		case 'u':
		case O_USER:
			o->user = optarg;
			break;
		case 'w':
		case O_WORKDIR:
			o->workdir = optarg;
			break;
		case O_ENTRYPOINT:
			o->entrypoint = optarg;
			break;
		case O_HOSTNAME:
			o->hostname = optarg;
			break;
		case O_CAPADD:
			rc = strv_push(&o->cap_add, optarg);
			break;
		case O_CAPDROP:
			rc = strv_push(&o->cap_drop, optarg);
			break;
		case O_DEVICE:
			rc = strv_push(&o->devices, optarg);
			break;
		case O_USERNS:
			o->userns = true;
			break;
		case O_PRIV:
			o->privileged = true;
			break;
		case O_INSECURE:
			o->insecure = true;
			break;
		default:
			berth_usage("run");
			return EXIT_RUN_FAILED;
		}
		if (rc < 0)
			return usage_error("option", optarg ? optarg : "", "out of memory");
	}
	if (optind >= argc) {
		berth_usage("run");
		return EXIT_RUN_FAILED;
	}
	return 0;
}

static void free_opts(struct run_opts *o)
{
	strv_free(o->env);
	strv_free(o->cap_add);
	strv_free(o->cap_drop);
	strv_free(o->volumes);
	strv_free(o->devices);
}

/* An image's name as a readable prefix for generated instance names. */
static void generate_name(const char *ref, char *out, size_t cap)
{
	const char *base = strrchr(ref, '/');
	base = base ? base + 1 : ref;
	char prefix[33];
	size_t n = 0;
	for (const char *p = base; *p && *p != ':' && *p != '@' && n < sizeof(prefix) - 1; p++)
		prefix[n++] =
		    (isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-') ? *p : '-';
	prefix[n] = '\0';
	if (!n || !isalnum((unsigned char)prefix[0]))
		snprintf(prefix, sizeof(prefix), "run");
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)wall_ms();
	snprintf(out, cap, "%s-%08x", prefix, r);
}

static int add_bind(struct instance_spec *s, const char *vol, struct berr *err)
{
	char buf[2 * PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", vol) >= (int)sizeof(buf))
		return berr_set(err, ENAMETOOLONG, "-v %s", vol);
	char *dst = strchr(buf, ':');
	if (!dst)
		return berr_set(err, 0, "-v %s: expected SRC:DST[:ro]", vol);
	*dst++ = '\0';
	char *mode = strchr(dst, ':');
	bool ro = false;
	if (mode) {
		*mode++ = '\0';
		if (!strcmp(mode, "ro"))
			ro = true;
		else if (strcmp(mode, "rw"))
			return berr_set(err, 0, "-v %s: mode \"%s\" is not ro or rw", vol, mode);
	}
	if (buf[0] != '/')
		return berr_set(err, 0, "-v %s: the source must be an absolute host path", vol);
	char real[PATH_MAX];
	if (!realpath(buf, real))
		return berr_set(err, errno, "-v %s: %s", vol, buf);
	if (dst[0] != '/')
		return berr_set(err, 0, "-v %s: the destination must be absolute", vol);
	struct bind_mount *b = realloc(s->binds, (s->n_binds + 1) * sizeof(*b));
	if (!b)
		return berr_set(err, ENOMEM, "-v");
	s->binds = b;
	b = &s->binds[s->n_binds++];
	b->source = strdup(real);
	b->destination = strdup(dst);
	b->readonly = ro;
	return b->source && b->destination ? 0 : berr_set(err, ENOMEM, "-v");
}

static int add_device(struct instance_spec *s, const char *arg, struct berr *err)
{
	char buf[2 * PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return berr_set(err, ENAMETOOLONG, "--device %s", arg);
	char *inside = strchr(buf, ':'), *perms = NULL;
	if (inside) {
		*inside++ = '\0';
		perms = strchr(inside, ':');
		if (perms)
			*perms++ = '\0';
		if (!inside[0])
			inside = NULL;
	}
	struct device_rule *d = realloc(s->devices, (s->n_devices + 1) * sizeof(*d));
	if (!d)
		return berr_set(err, ENOMEM, "--device");
	s->devices = d;
	d = &s->devices[s->n_devices++];
	memset(d, 0, sizeof(*d));
	d->path = strdup(buf);
	d->path_in = inside ? strdup(inside) : NULL;
	d->permissions = strdup(perms ? perms : "rwm");
	return d->path && d->permissions ? 0 : berr_set(err, ENOMEM, "--device");
}

/* Image defaults overridden by the command line, as docker run does. */
static int build_spec(const struct run_opts *o, const struct oci_image *img, char **cmd,
		      const char *name, struct instance_spec *s, struct berr *err)
{
	bool ok = true;
	if (!(s->name = strdup(name)) || !(s->image_digest = strdup(img->digest)))
		return berr_set(err, ENOMEM, "spec");
	s->layer_dirs = strv_dup(img->layer_dirs, &ok);
	if (o->entrypoint) {
		if (o->entrypoint[0] && strv_push(&s->args, o->entrypoint) < 0)
			ok = false;
	} else {
		for (char **e = img->entrypoint; e && *e; e++)
			if (strv_push(&s->args, *e) < 0)
				ok = false;
	}
	char *const *tail = cmd[0] ? cmd : (o->entrypoint ? NULL : img->cmd);
	for (char *const *c = tail; c && *c; c++)
		if (strv_push(&s->args, *c) < 0)
			ok = false;
	for (char **e = img->env; e && *e; e++)
		if (strv_env_set(&s->env, *e) < 0)
			ok = false;
	for (char **e = o->env; e && *e; e++) {
		if (strchr(*e, '=')) {
			if (strv_env_set(&s->env, *e) < 0)
				ok = false;
		} else if (getenv(*e)) {
			/* -e NAME passes the caller's value, as docker does. */
			if (strv_env_set_kv(&s->env, *e, getenv(*e)) < 0)
				ok = false;
		}
	}
	if (!s->env && !(s->env = calloc(1, sizeof(char *))))
		ok = false;
	const char *cwd = o->workdir ? o->workdir : img->working_dir;
	if (cwd && cwd[0] && !(s->cwd = strdup(cwd)))
		ok = false;
	const char *user = o->user ? o->user : img->user;
	if (user && user[0] && !(s->user = strdup(user)))
		ok = false;
	if (o->hostname && !(s->hostname = strdup(o->hostname)))
		ok = false;
	s->cap_add = strv_dup(o->cap_add, &ok);
	s->cap_drop = strv_dup(o->cap_drop, &ok);
	if (!ok)
		return berr_set(err, ENOMEM, "spec");
	for (char **v = o->volumes; v && *v; v++)
		if (add_bind(s, *v, err) < 0)
			return -1;
	for (char **d = o->devices; d && *d; d++)
		if (add_device(s, *d, err) < 0)
			return -1;
	s->readonly_rootfs = o->readonly;
	s->network = o->network;
	s->userns = o->userns;
	s->privileged = o->privileged;
	s->memory = o->memory;
	s->memory_swap = o->memory_swap;
	s->pids_limit = o->pids;
	s->cpu_shares = o->cpu_shares;
	if (o->cpus > 0) {
		s->cpu_period_us = 100000;
		s->cpu_quota_us = (int64_t)(o->cpus * 100000);
	}
	return instance_spec_validate(s, err);
}

static int open_image(struct oci_store *store, const char *ref, bool insecure,
		      struct oci_image **img, struct berr *err)
{
	if (oci_image_open(store, ref, img, err) == 0)
		return 0;
	if (err->code != ENOENT)
		return -1;
	struct oci_pull_opts po = {.insecure = insecure, .progress = true};
	char digest[DIGEST_STR_MAX];
	if (oci_pull(store, ref, &po, digest, err) < 0)
		return -1;
	return oci_image_open(store, ref, img, err);
}

static int exit_code_for_start_error(const struct berr *err)
{
	if (!strncmp(err->msg, "instance ", 9) && strstr(err->msg, ": exec ")) {
		if (err->code == ENOENT)
			return EXIT_NOT_FOUND;
		return EXIT_CANNOT_EXEC;
	}
	return EXIT_RUN_FAILED;
}

/* state.json for instances kept after the run (without --rm), so `berth
 * shim state` and a daemon see what ran and how it ended. */
static void record_state(const char *dir, enum instance_status status,
			 const struct foreground_result *res, const char *error)
{
	struct instance_state st;
	memset(&st, 0, sizeof(st));
	st.status = status;
	st.shim_pid = getpid();
	st.shim_start_time = proc_start_time(getpid());
	if (res) {
		st.pid = res->pid;
		st.started_at = res->started_at;
		st.exit_code = res->exit_code;
		st.exit_signal = WIFSIGNALED(res->status) ? WTERMSIG(res->status) : 0;
		st.oom_killed = res->oom_killed;
		st.finished_at = wall_ms();
	}
	if (error)
		snprintf(st.error, sizeof(st.error), "%s", error);
	struct berr err;
	if (state_write(dir, &st, &err) < 0)
		log_warn("%s", err.msg);
}

static int cmd_run(struct berth_ctx *ctx, int argc, char **argv)
{
	struct run_opts o = {.network = NET_NONE};
	int rc = parse_args(argc, argv, &o);
	if (rc) {
		free_opts(&o);
		return rc;
	}
	const char *ref = argv[optind];
	char **cmd = argv + optind + 1;
	struct berr err;
	struct oci_store *store = NULL;
	struct oci_image *img = NULL;
	struct instance_spec *spec = calloc(1, sizeof(*spec));
	struct sandbox *sb = NULL;
	int lock = -1;
	bool leased = false;
	char name[INSTANCE_NAME_MAX + 1], dir[PATH_MAX];
	rc = EXIT_RUN_FAILED;
	if (!spec) {
		berr_set(&err, ENOMEM, "run");
		goto fail;
	}
	if (oci_store_open(ctx->root, &store, &err) < 0 ||
	    open_image(store, ref, o.insecure, &img, &err) < 0)
		goto fail;
	if (o.name)
		snprintf(name, sizeof(name), "%s", o.name);
	else
		generate_name(img->ref, name, sizeof(name));
	if (build_spec(&o, img, cmd, name, spec, &err) < 0 ||
	    instance_dir_path(ctx->root, name, dir, sizeof(dir), &err) < 0)
		goto fail;
	/* A run of this name that was killed may have left its directory,
	 * cgroup and lease: they are taken back. */
	int left = shim_reclaim(ctx->root, name, &err);
	if (left < 0)
		goto fail;
	struct berr e;
	if (left > 0 && oci_lease_remove(store, name, &e) < 0)
		log_debug("%s (the lease is taken again below)", e.msg);
	if ((lock = instance_lock(dir, name, true, false, &err)) < 0)
		goto fail;
	/* The lease keeps `berth gc` away from the layers while they are in use. */
	if ((o.rm ? oci_lease_add_ephemeral(store, name, img->digest, &err)
		  : oci_lease_add(store, name, img->digest, &err)) < 0)
		goto fail;
	leased = true;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/spec.json", dir);
	/* With --rm the writable layer lives in memory (sandbox.h): nothing
	 * to write now, nothing to delete afterwards. */
	bool ephemeral = o.rm && !o.userns;
	if ((!ephemeral && instance_files_prepare(dir, spec, &err) < 0) ||
	    (!o.rm && instance_spec_write(spec, path, &err) < 0) ||
	    sandbox_from_spec(spec, dir, ephemeral, &sb, &err) < 0)
		goto fail;
	char cache[PATH_MAX];
	snprintf(cache, sizeof(cache), "%s/seccomp", ctx->run);
	if (seccomp_set_cache_dir(cache, &e) < 0)
		log_debug("no seccomp cache: %s", e.msg);
	if (!o.rm)
		record_state(dir, INSTANCE_RUNNING, NULL, NULL);
	struct foreground_result res;
	if (sandbox_run_foreground(sb, &res, &err) < 0) {
		rc = exit_code_for_start_error(&err);
		if (!o.rm)
			record_state(dir, INSTANCE_EXITED, NULL, err.msg);
		goto fail;
	}
	rc = res.exit_code;
	if (res.oom_killed)
		fprintf(stderr,
			"berth: instance %s was killed by the out-of-memory killer (memory "
			"limit %lld bytes)\n",
			name, (long long)o.memory);
	if (!o.rm)
		record_state(dir, INSTANCE_EXITED, &res, res.oom_killed ? "out of memory" : NULL);
	goto done;
fail:
	fprintf(stderr, "berth: %s\n", err.msg);
done:
	if (o.rm && lock >= 0) {
		if (fs_remove_tree(dir, &err) < 0)
			fprintf(stderr, "berth: %s\n", err.msg);
	}
	if (leased && o.rm && oci_lease_remove(store, name, &err) < 0)
		fprintf(stderr, "berth: %s\n", err.msg);
	if (lock >= 0)
		close(lock);
	sandbox_free(sb);
	instance_spec_free(spec);
	oci_image_free(img);
	if (store)
		oci_store_close(store);
	free_opts(&o);
	return rc;
}
BERTH_COMMAND(run, RUN_USAGE, "run an image in the foreground", cmd_run);
