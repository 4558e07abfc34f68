/* OCI runtime bundles: the subset of config.json berth runs. Every member
 * is either understood or refused by name ("config.json: linux.intelRdt is
 * not supported"): a setting silently ignored would run something less
 * isolated than its author asked for. */
#include "shim/bundle.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/names.h"
#include "common/log.h"
#include "common/strv.h"
#include "shim/mountopt.h"

#define CONFIG_MAX (4 << 20)
#define ARRAY_MAX  4096
#define WHAT	   "config.json"

/* Fails on the first member of obj not in `known`, naming it. */
static int only_known(yajl_val obj, const char *path, const char *const *known, struct berr *err)
{
	if (!obj)
		return 0;
	if (!YAJL_IS_OBJECT(obj))
		return berr_set(err, 0, WHAT ": %s: expected an object", path);
	size_t i = 0;
	const char *k = json_unknown_key(obj, known, &i);
	if (k)
		return berr_set(err, 0, WHAT ": %s%s%s is not supported", path, path[0] ? "." : "",
				k);
	return 0;
}

/* Members that are accepted when empty (false, "", [], {}, null) and
 * refused otherwise: they ask for something berth does not do. */
static bool is_empty(yajl_val v)
{
	return !v || YAJL_IS_NULL(v) || YAJL_IS_FALSE(v) ||
	       (YAJL_IS_STRING(v) && !v->u.string[0]) || (YAJL_IS_ARRAY(v) && !v->u.array.len) ||
	       (YAJL_IS_OBJECT(v) && !v->u.object.len);
}

static int refuse_unless_empty(yajl_val obj, const char *path, const char *key, struct berr *err)
{
	if (!is_empty(json_get(obj, key)))
		return berr_set(err, 0, WHAT ": %s.%s is not supported", path, key);
	return 0;
}

/* A JSON array of strings as a NULL-terminated vector (NULL if absent). */
static int get_strv(yajl_val obj, const char *key, const char *path, char ***out, struct berr *err)
{
	if (json_get_strv(obj, key, path, ARRAY_MAX, 0, out, err) < 0)
		return berr_wrap(err, WHAT);
	return 0;
}

static int get_u32(yajl_val obj, const char *key, const char *path, bool required, uint32_t *out,
		   struct berr *err)
{
	long long v = 0;
	if (!json_get(obj, key) && !required)
		return 0;
	if (json_get_int(obj, key, path, required, &v, err) < 0)
		return berr_wrap(err, WHAT);
	if (v < 0 || v > (long long)UINT32_MAX - 1)
		return berr_set(err, 0, WHAT ": %s.%s: %lld is out of range", path, key, v);
	*out = (uint32_t)v;
	return 0;
}

static int load_user(struct sandbox *sb, yajl_val user, struct berr *err)
{
	static const char *const known[] = {"uid", "gid", "umask", "additionalGids", NULL};
	if (only_known(user, "process.user", known, err) < 0)
		return -1;
	uint32_t uid = 0, gid = 0, um = 0;
	if (get_u32(user, "uid", "process.user", true, &uid, err) < 0 ||
	    get_u32(user, "gid", "process.user", true, &gid, err) < 0)
		return -1;
	sb->ids_given = true;
	sb->uid = uid;
	sb->gid = gid;
	if (json_get(user, "umask")) {
		if (get_u32(user, "umask", "process.user", true, &um, err) < 0)
			return -1;
		if (um > 0777)
			return berr_set(err, 0, WHAT ": process.user.umask: %u is not a mode", um);
		sb->umask_set = true;
		sb->umask = (mode_t)um;
	}
	yajl_val g;
	if (json_get_array(user, "additionalGids", "process.user", false, &g, err) < 0)
		return berr_wrap(err, WHAT);
	if (g && g->u.array.len) {
		if (g->u.array.len > 65536)
			return berr_set(err, 0, WHAT ": process.user.additionalGids: too many");
		sb->groups = calloc(g->u.array.len, sizeof(gid_t));
		if (!sb->groups)
			return berr_set(err, ENOMEM, WHAT);
		for (size_t i = 0; i < g->u.array.len; i++) {
			yajl_val v = g->u.array.values[i];
			if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 ||
			    YAJL_GET_INTEGER(v) >= (long long)UINT32_MAX)
				return berr_set(err, 0,
						WHAT
						": process.user.additionalGids[%zu]: expected a "
						"group id",
						i);
			sb->groups[sb->n_groups++] = (gid_t)YAJL_GET_INTEGER(v);
		}
	}
	return 0;
}

static int load_caps(struct sandbox *sb, yajl_val caps, struct berr *err)
{
	static const char *const known[] = {"bounding",	 "effective", "inheritable",
					    "permitted", "ambient",   NULL};
	if (only_known(caps, "process.capabilities", known, err) < 0)
		return -1;
	uint64_t *dst[] = {&sb->caps.bounding, &sb->caps.effective, &sb->caps.inheritable,
			   &sb->caps.permitted, &sb->caps.ambient};
	for (size_t i = 0; i < ARRAY_SIZE(dst); i++) {
		cleanup_strv char **v = NULL;
		if (get_strv(caps, known[i], "process.capabilities", &v, err) < 0)
			return -1;
		*dst[i] = 0;
		if (v && caps_from_names((const char *const *)v, dst[i], err) < 0)
			return berr_wrap(err, WHAT ": process.capabilities.%s", known[i]);
	}
	/* The kernel raises an ambient capability only if it is permitted and
	 * inheritable. The templates of runc and crun list ambient ones without
	 * inheritable; like those runtimes, the others are left out, said aloud. */
	uint64_t impossible = sb->caps.ambient & ~(sb->caps.permitted & sb->caps.inheritable);
	if (impossible) {
		log_warn(WHAT ": process.capabilities.ambient: leaving out capabilities that are "
			      "not also permitted and inheritable (mask %#llx)",
			 (unsigned long long)impossible);
		sb->caps.ambient &= ~impossible;
	}
	return 0;
}

static const struct name_value rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

static int rlimit_value(yajl_val v, const char *what, size_t i, rlim_t *out, struct berr *err)
{
	/* yajl keeps integers as long long; larger values arrive as doubles:
	 * the text is parsed instead, so 2^64-1 (unlimited) is exact. */
	if (!v || !YAJL_IS_NUMBER(v) || !v->u.number.r)
		return berr_set(err, 0, WHAT ": process.rlimits[%zu].%s: expected a number", i,
				what);
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v->u.number.r, &end, 10);
	if (errno || *end || v->u.number.r[0] == '-')
		return berr_set(err, 0, WHAT ": process.rlimits[%zu].%s: \"%s\" is out of range", i,
				what, v->u.number.r);
	*out = (rlim_t)n;
	return 0;
}

/* Entry i of an array of objects at `where` ("process.rlimits"), once it
 * has only known members: the object, its path for messages, its "type". */
struct typed_entry {
	yajl_val v;
	char path[48];
	const char *type;
};

static int typed_entry(yajl_val arr, size_t i, const char *where, const char *const *known,
		       struct typed_entry *e, struct berr *err)
{
	e->v = arr->u.array.values[i];
	snprintf(e->path, sizeof(e->path), "%s[%zu]", where, i);
	if (only_known(e->v, e->path, known, err) < 0)
		return -1;
	if (json_get_str(e->v, "type", e->path, true, &e->type, err) < 0)
		return berr_wrap(err, WHAT);
	return 0;
}

static int load_rlimits(struct sandbox *sb, yajl_val arr, struct berr *err)
{
	if (!arr)
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return berr_set(err, 0, WHAT ": process.rlimits: expected an array");
	if (arr->u.array.len > ARRAY_SIZE(rlimit_names))
		return berr_set(err, 0, WHAT ": process.rlimits: too many entries");
	sb->rlimits = calloc(arr->u.array.len ? arr->u.array.len : 1, sizeof(*sb->rlimits));
	if (!sb->rlimits)
		return berr_set(err, ENOMEM, WHAT);
	static const char *const known[] = {"type", "soft", "hard", NULL};
	for (size_t i = 0; i < arr->u.array.len; i++) {
		struct typed_entry e;
		if (typed_entry(arr, i, "process.rlimits", known, &e, err) < 0)
			return -1;
		const struct name_value *res =
		    name_value_find(rlimit_names, ARRAY_SIZE(rlimit_names), e.type);
		if (!res)
			return berr_set(err, 0, WHAT ": %s.type: unknown limit \"%s\"", e.path,
					e.type);
		struct sb_rlimit *l = &sb->rlimits[sb->n_rlimits++];
		l->resource = (int)res->value;
		if (rlimit_value(json_get(e.v, "soft"), "soft", i, &l->limit.rlim_cur, err) < 0 ||
		    rlimit_value(json_get(e.v, "hard"), "hard", i, &l->limit.rlim_max, err) < 0)
			return -1;
		if (l->limit.rlim_cur > l->limit.rlim_max)
			return berr_set(err, 0, WHAT ": %s: soft limit above the hard limit",
					e.path);
	}
	return 0;
}

static int load_process(struct sandbox *sb, yajl_val p, struct berr *err)
{
	static const char *const known[] = {"terminal",	    "user",
					    "args",	    "env",
					    "cwd",	    "capabilities",
					    "rlimits",	    "noNewPrivileges",
					    "oomScoreAdj",  "apparmorProfile",
					    "selinuxLabel", NULL};
	if (!p)
		return berr_set(err, 0, WHAT ": process is required");
	if (only_known(p, "process", known, err) < 0)
		return -1;
	bool terminal = false;
	if (json_get_bool(p, "terminal", "process", false, &terminal, err) < 0)
		return berr_wrap(err, WHAT);
	if (terminal)
		return berr_set(err, 0, WHAT ": process.terminal=true is not supported");
	if (refuse_unless_empty(p, "process", "apparmorProfile", err) < 0 ||
	    refuse_unless_empty(p, "process", "selinuxLabel", err) < 0)
		return -1;
	if (load_user(sb, json_get(p, "user"), err) < 0)
		return -1;
	if (get_strv(p, "args", "process", &sb->args, err) < 0 ||
	    get_strv(p, "env", "process", &sb->env, err) < 0)
		return -1;
	if (!sb->args || !sb->args[0] || !sb->args[0][0])
		return berr_set(err, 0, WHAT ": process.args must name a program");
	if (!sb->env && !(sb->env = calloc(1, sizeof(char *))))
		return berr_set(err, ENOMEM, WHAT);
	const char *cwd;
	if (json_get_str(p, "cwd", "process", true, &cwd, err) < 0)
		return berr_wrap(err, WHAT);
	if (cwd[0] != '/')
		return berr_set(err, 0, WHAT ": process.cwd \"%s\" is not absolute", cwd);
	if (!(sb->cwd = strdup(cwd)))
		return berr_set(err, ENOMEM, WHAT);
	sb->create_cwd = true;
	if (load_caps(sb, json_get(p, "capabilities"), err) < 0)
		return -1;
	if (load_rlimits(sb, json_get(p, "rlimits"), err) < 0)
		return -1;
	if (json_get_bool(p, "noNewPrivileges", "process", false, &sb->no_new_privs, err) < 0)
		return berr_wrap(err, WHAT);
	if (json_get(p, "oomScoreAdj")) {
		int64_t v = 0;
		if (json_get_i64(p, "oomScoreAdj", "process", false, &v, err) < 0)
			return berr_wrap(err, WHAT);
		if (v < -1000 || v > 1000)
			return berr_set(err, 0,
					WHAT ": process.oomScoreAdj %lld is outside -1000..1000",
					(long long)v);
		sb->oom_score_adj_set = true;
		sb->oom_score_adj = (int)v;
	}
	return 0;
}

static int resolve_in_bundle(const char *bundle, const char *p, char **out, struct berr *err)
{
	char joined[PATH_MAX];
	if (p[0] == '/')
		snprintf(joined, sizeof(joined), "%s", p);
	else if (snprintf(joined, sizeof(joined), "%s/%s", bundle, p) >= (int)sizeof(joined))
		return berr_set(err, ENAMETOOLONG, WHAT ": %s", p);
	char real[PATH_MAX];
	if (!realpath(joined, real))
		return berr_set(err, errno, WHAT ": %s", joined);
	return (*out = strdup(real)) ? 0 : berr_set(err, ENOMEM, WHAT);
}

static int load_mounts(struct sandbox *sb, const char *bundle, yajl_val arr, struct berr *err)
{
	static const char *const known[] = {"destination", "type", "source", "options", NULL};
	static const char *const fs_types[] = {"proc",	 "sysfs",   "tmpfs", "devpts",
					       "mqueue", "cgroup2", NULL};
	if (!arr)
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return berr_set(err, 0, WHAT ": mounts: expected an array");
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val m = arr->u.array.values[i];
		char path[32];
		snprintf(path, sizeof(path), "mounts[%zu]", i);
		if (only_known(m, path, known, err) < 0)
			return -1;
		const char *dest, *type, *source;
		if (json_get_str(m, "destination", path, true, &dest, err) < 0 ||
		    json_get_str(m, "type", path, false, &type, err) < 0 ||
		    json_get_str(m, "source", path, false, &source, err) < 0)
			return berr_wrap(err, WHAT);
		if (dest[0] != '/')
			return berr_set(err, 0, WHAT ": %s.destination \"%s\" is not absolute",
					path, dest);
		cleanup_strv char **opts = NULL;
		if (get_strv(m, "options", path, &opts, err) < 0)
			return -1;
		struct mount_opts mo;
		if (mount_opts_parse((const char *const *)opts, strv_len(opts), &mo, err) < 0)
			return berr_wrap(err, WHAT ": %s", path);
		if (mo.bind || (type && !strcmp(type, "bind"))) {
			if (!source)
				return berr_set(err, 0, WHAT ": %s: a bind mount needs a source",
						path);
			cleanup_free char *src = NULL;
			if (resolve_in_bundle(bundle, source, &src, err) < 0)
				return berr_wrap(err, "%s", path);
			if (sandbox_add_mount(sb, SBM_BIND, NULL, src, dest, mo.flags, NULL, err) <
			    0)
				return -1;
			struct sb_mount *sm = &sb->mounts[sb->n_mounts - 1];
			sm->recursive = mo.recursive;
			sm->propagation = mo.propagation;
			continue;
		}
		if (!type)
			return berr_set(err, 0, WHAT ": %s: type is required", path);
		if (!strcmp(type, "cgroup")) {
			if (sandbox_add_mount(sb, SBM_CGROUP, "cgroup", "cgroup", dest, mo.flags,
					      NULL, err) < 0)
				return -1;
			continue;
		}
		bool known_fs = false;
		for (size_t k = 0; fs_types[k] && !known_fs; k++)
			known_fs = !strcmp(type, fs_types[k]);
		if (!known_fs)
			return berr_set(err, 0, WHAT ": %s: mount type \"%s\" is not supported",
					path, type);
		if (sandbox_add_mount(sb, SBM_FS, type, source ? source : type, dest, mo.flags,
				      mo.data[0] ? mo.data : NULL, err) < 0)
			return -1;
		sb->mounts[sb->n_mounts - 1].propagation = mo.propagation;
	}
	return 0;
}

static int load_namespaces(struct sandbox *sb, yajl_val arr, struct berr *err)
{
	static const struct name_value types[] = {
	    {"pid", CLONE_NEWPID},  {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC},
	    {"uts", CLONE_NEWUTS},  {"mount", CLONE_NEWNS},    {"cgroup", CLONE_NEWCGROUP},
	    {"user", CLONE_NEWUSER}};
	static const char *const known[] = {"type", "path", NULL};
	if (!arr || !YAJL_IS_ARRAY(arr))
		return berr_set(err, 0, WHAT ": linux.namespaces: expected an array");
	for (size_t i = 0; i < arr->u.array.len; i++) {
		struct typed_entry e;
		if (typed_entry(arr, i, "linux.namespaces", known, &e, err) < 0)
			return -1;
		if (!is_empty(json_get(e.v, "path")))
			return berr_set(
			    err, 0, WHAT ": %s.path: joining a namespace is not supported", e.path);
		const struct name_value *type = name_value_find(types, ARRAY_SIZE(types), e.type);
		if (!type)
			return berr_set(err, 0, WHAT ": %s: namespace \"%s\" is not supported",
					e.path, e.type);
		sb->clone_flags |= (int)type->value;
	}
	if (!(sb->clone_flags & CLONE_NEWNS))
		return berr_set(err, 0, WHAT ": linux.namespaces: a mount namespace is required");
	return 0;
}

static int load_idmap(yajl_val arr, const char *path, struct sb_idmap *map, size_t *n,
		      struct berr *err)
{
	static const char *const known[] = {"containerID", "hostID", "size", NULL};
	if (!arr)
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return berr_set(err, 0, WHAT ": %s: expected an array", path);
	if (arr->u.array.len > SB_IDMAP_MAX)
		return berr_set(err, 0, WHAT ": %s: more than %d entries", path, SB_IDMAP_MAX);
	bool root = false;
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val e = arr->u.array.values[i];
		char p[48];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (only_known(e, p, known, err) < 0 ||
		    get_u32(e, "containerID", p, true, &map[i].inside, err) < 0 ||
		    get_u32(e, "hostID", p, true, &map[i].outside, err) < 0 ||
		    get_u32(e, "size", p, true, &map[i].count, err) < 0)
			return -1;
		if (map[i].count == 0)
			return berr_set(err, 0, WHAT ": %s.size: must not be 0", p);
		root = root || map[i].inside == 0;
	}
	*n = arr->u.array.len;
	if (!root)
		return berr_set(err, 0, WHAT ": %s: must map id 0", path);
	return 0;
}

static int load_resources(struct sandbox *sb, yajl_val r, struct berr *err)
{
	static const char *const known[] = {"memory", "cpu", "pids", "devices", NULL};
	static const char *const mem_known[] = {"limit", "swap", NULL};
	static const char *const cpu_known[] = {"shares", "quota", "period", NULL};
	static const char *const pids_known[] = {"limit", NULL};
	static const char *const dev_known[] = {"allow", "type", "major", "minor", "access", NULL};
	if (!r)
		return 0;
	if (only_known(r, "linux.resources", known, err) < 0)
		return -1;
	yajl_val mem = json_get(r, "memory"), cpu = json_get(r, "cpu"), pids = json_get(r, "pids");
	if (only_known(mem, "linux.resources.memory", mem_known, err) < 0 ||
	    only_known(cpu, "linux.resources.cpu", cpu_known, err) < 0 ||
	    only_known(pids, "linux.resources.pids", pids_known, err) < 0)
		return -1;
	struct cgroup_limits *l = &sb->limits;
	if (json_get_i64(mem, "limit", "linux.resources.memory", false, &l->memory, err) < 0 ||
	    json_get_i64(mem, "swap", "linux.resources.memory", false, &l->memory_swap, err) < 0 ||
	    json_get_i64(cpu, "shares", "linux.resources.cpu", false, &l->cpu_shares, err) < 0 ||
	    json_get_i64(cpu, "quota", "linux.resources.cpu", false, &l->cpu_quota_us, err) < 0 ||
	    json_get_i64(cpu, "period", "linux.resources.cpu", false, &l->cpu_period_us, err) < 0 ||
	    json_get_i64(pids, "limit", "linux.resources.pids", false, &l->pids_limit, err) < 0)
		return berr_wrap(err, WHAT);
	if (l->cpu_quota_us > 0 && !l->cpu_period_us)
		l->cpu_period_us = 100000;
	yajl_val devs;
	if (json_get_array(r, "devices", "linux.resources", false, &devs, err) < 0)
		return berr_wrap(err, WHAT);
	size_t nd = devs ? devs->u.array.len : 0;
	if (nd > 1024)
		return berr_set(err, 0, WHAT ": linux.resources.devices: too many rules");
	/* The bundle's rules, then the devices every instance has (as runc). */
	size_t total = nd + cgroup_default_devices_count;
	sb->devices = calloc(total, sizeof(*sb->devices));
	if (!sb->devices)
		return berr_set(err, ENOMEM, WHAT);
	for (size_t i = 0; i < nd; i++) {
		yajl_val d = devs->u.array.values[i];
		char path[48];
		snprintf(path, sizeof(path), "linux.resources.devices[%zu]", i);
		if (only_known(d, path, dev_known, err) < 0)
			return -1;
		struct cgroup_device *c = &sb->devices[i];
		const char *type = NULL, *access = NULL;
		long long maj = -1, min = -1;
		if (json_get_bool(d, "allow", path, true, &c->allow, err) < 0 ||
		    json_get_str(d, "type", path, false, &type, err) < 0 ||
		    json_get_str(d, "access", path, false, &access, err) < 0 ||
		    json_get_int(d, "major", path, false, &maj, err) < 0 ||
		    json_get_int(d, "minor", path, false, &min, err) < 0)
			return berr_wrap(err, WHAT);
		if (!type)
			type = "a";
		if (strlen(type) != 1 || !strchr("acb", type[0]))
			return berr_set(err, 0, WHAT ": %s.type: \"%s\" is not a, c or b", path,
					type);
		if (!access || !access[0])
			access = "rwm";
		if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
			return berr_set(err, 0, WHAT ": %s.access: \"%s\" is not a subset of rwm",
					path, access);
		if (maj < -1 || min < -1 || maj > UINT32_MAX || min > UINT32_MAX)
			return berr_set(err, 0, WHAT ": %s: device number out of range", path);
		c->type = type[0];
		c->major = maj;
		c->minor = min;
		snprintf(c->access, sizeof(c->access), "%s", access);
	}
	memcpy(sb->devices + nd, cgroup_default_devices,
	       cgroup_default_devices_count * sizeof(*sb->devices));
	l->devices = sb->devices;
	l->n_devices = total;
	return 0;
}

static int load_linux(struct sandbox *sb, yajl_val lx, struct berr *err)
{
	static const char *const known[] = {
	    "namespaces", "uidMappings", "gidMappings",	  "resources",
	    "seccomp",	  "maskedPaths", "readonlyPaths", "rootfsPropagation",
	    "sysctl",	  "devices",	 "mountLabel",	  "cgroupsPath",
	    NULL,
	};
	if (!lx)
		return berr_set(err, 0, WHAT ": linux is required");
	if (only_known(lx, "linux", known, err) < 0)
		return -1;
	if (refuse_unless_empty(lx, "linux", "sysctl", err) < 0 ||
	    refuse_unless_empty(lx, "linux", "devices", err) < 0 ||
	    refuse_unless_empty(lx, "linux", "mountLabel", err) < 0 ||
	    refuse_unless_empty(lx, "linux", "cgroupsPath", err) < 0)
		return -1;
	if (load_namespaces(sb, json_get(lx, "namespaces"), err) < 0)
		return -1;
	if (load_idmap(json_get(lx, "uidMappings"), "linux.uidMappings", sb->uid_map,
		       &sb->n_uid_map, err) < 0 ||
	    load_idmap(json_get(lx, "gidMappings"), "linux.gidMappings", sb->gid_map,
		       &sb->n_gid_map, err) < 0)
		return -1;
	bool userns = sb->clone_flags & CLONE_NEWUSER;
	if (userns != (sb->n_uid_map > 0) || userns != (sb->n_gid_map > 0))
		return berr_set(err, 0,
				WHAT
				": linux.uidMappings and gidMappings go with a user namespace, "
				"and only with one");
	if (load_resources(sb, json_get(lx, "resources"), err) < 0)
		return -1;
	yajl_val sc = json_get(lx, "seccomp");
	if (sc && !YAJL_IS_NULL(sc)) {
		sb->seccomp = SB_SECCOMP_OCI;
		sb->seccomp_oci = sc;
	}
	if (get_strv(lx, "maskedPaths", "linux", &sb->masked_paths, err) < 0 ||
	    get_strv(lx, "readonlyPaths", "linux", &sb->readonly_paths, err) < 0)
		return -1;
	const char *prop;
	if (json_get_str(lx, "rootfsPropagation", "linux", false, &prop, err) < 0)
		return berr_wrap(err, WHAT);
	if (prop && prop[0]) {
		const char *words[] = {prop};
		struct mount_opts mo;
		if (mount_opts_parse(words, 1, &mo, err) < 0 || !mo.propagation ||
		    (mo.propagation & MS_SHARED))
			return berr_set(
			    err, 0, WHAT ": linux.rootfsPropagation \"%s\" is not supported", prop);
		sb->root_propagation = mo.propagation | MS_REC;
	}
	return 0;
}

int bundle_load(const char *bundle_dir, const char *id, struct sandbox **out, struct berr *err)
{
	*out = NULL;
	char bundle[PATH_MAX];
	if (!realpath(bundle_dir, bundle))
		return berr_set(err, errno, "bundle %s", bundle_dir);
	char cfg[PATH_MAX + 16];
	snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (fs_read_file(cfg, CONFIG_MAX, &data, &len, err) < 0)
		return -1;
	return bundle_parse(data, len, bundle, id, out, err);
}

int bundle_parse(const char *json, size_t len, const char *bundle, const char *id,
		 struct sandbox **out, struct berr *err)
{
	static const char *const known[] = {"ociVersion", "process", "root",  "hostname",
					    "domainname", "mounts",  "linux", "annotations",
					    "hooks",	  NULL};
	*out = NULL;
	if (!instance_name_valid(id))
		return berr_set(err, 0, "container id \"%s\" is invalid", id);
	struct sandbox *sb = sandbox_new();
	if (!sb)
		return berr_set(err, ENOMEM, "bundle %s", bundle);
	if (json_parse(json, len, CONFIG_MAX, WHAT, &sb->doc, err) < 0)
		goto fail;
	yajl_val doc = sb->doc;
	if (only_known(doc, "", known, err) < 0 ||
	    refuse_unless_empty(doc, "", "domainname", err) < 0 ||
	    refuse_unless_empty(doc, "", "hooks", err) < 0)
		goto fail;
	const char *ver;
	if (json_get_str(doc, "ociVersion", WHAT, true, &ver, err) < 0)
		goto fail;
	if (strncmp(ver, "1.", 2)) {
		berr_set(err, 0, WHAT ": ociVersion %s is not 1.x", ver);
		goto fail;
	}
	if (!(sb->name = strdup(id)))
		goto nomem;
	if (load_process(sb, json_get(doc, "process"), err) < 0 ||
	    load_linux(sb, json_get(doc, "linux"), err) < 0 ||
	    load_mounts(sb, bundle, json_get(doc, "mounts"), err) < 0)
		goto fail;
	yajl_val root = json_get(doc, "root");
	static const char *const root_known[] = {"path", "readonly", NULL};
	const char *rpath;
	if (!root) {
		berr_set(err, 0, WHAT ": root is required");
		goto fail;
	}
	if (only_known(root, "root", root_known, err) < 0 ||
	    json_get_str(root, "path", "root", true, &rpath, err) < 0 ||
	    json_get_bool(root, "readonly", "root", false, &sb->readonly_root, err) < 0 ||
	    resolve_in_bundle(bundle, rpath, &sb->rootfs_dir, err) < 0)
		goto fail;
	struct stat st;
	if (stat(sb->rootfs_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		berr_set(err, errno ? errno : ENOTDIR, WHAT ": root.path %s", sb->rootfs_dir);
		goto fail;
	}
	if (!(sb->mountpoint = strdup(sb->rootfs_dir)))
		goto nomem;
	const char *host;
	if (json_get_str(doc, "hostname", WHAT, false, &host, err) < 0)
		goto fail;
	if (host && host[0]) {
		if (!(sb->clone_flags & CLONE_NEWUTS)) {
			berr_set(err, 0, WHAT ": hostname needs a uts namespace");
			goto fail;
		}
		if (strlen(host) > 64) {
			berr_set(err, 0, WHAT ": hostname longer than 64 bytes");
			goto fail;
		}
		if (!(sb->hostname = strdup(host)))
			goto nomem;
	}
	sb->default_devices = true;
	*out = sb;
	return 0;
nomem:
	berr_set(err, ENOMEM, "bundle %s", bundle);
fail:
	sandbox_free(sb);
	return -1;
}
