/* The OCI runtime-spec "linux.seccomp" object, as runc reads it: unknown
 * syscall names are skipped (a profile may name syscalls newer than the
 * installed libseccomp), while unknown fields, actions, operators,
 * architectures and flags are refused by name. Every count is bounded. */
#include <ctype.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/names.h"
#include "common/lazy.h"
#include "common/log.h"
#include "shim/seccomp_internal.h"

#define OCI_PATH		"linux.seccomp"
#define OCI_MAX_SYSCALL_ENTRIES 1024
#define OCI_MAX_NAMES		4096 /* syscall names over all entries */
#define OCI_MAX_ARGS		6    /* a syscall has six arguments */
#define OCI_MAX_LIST		32   /* architectures, flags */
#define OCI_NAME_MAX		64   /* one syscall, action, arch or flag name */
#define OCI_ERRNO_MAX		4095

#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC (1UL << 0)
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif

static const char *const seccomp_fields[] = {
    "defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls", NULL,
};
static const char *const syscall_fields[] = {"names", "action", "errnoRet", "args", NULL};
static const char *const arg_fields[] = {"index", "value", "valueTwo", "op", NULL};

/* Refuses members outside `known`, naming the first one. */
static int check_fields(yajl_val obj, const char *const *known, const char *path, struct berr *err)
{
	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *key = obj->u.object.keys[i];
		bool ok = false;
		for (size_t k = 0; known[k] && !ok; k++)
			ok = strcmp(key, known[k]) == 0;
		if (ok)
			continue;
		if (!strcmp(key, "listenerPath") || !strcmp(key, "listenerMetadata"))
			return berr_set(
			    err, 0,
			    "%s.%s: not supported (berth provides no seccomp notify listener)",
			    path, key);
		return berr_set(err, 0, "%s: unsupported field \"%.64s\"", path, key);
	}
	return 0;
}

/* A non-negative JSON integer up to UINT64_MAX (yajl's own integers stop at
 * INT64_MAX, and masks such as 0xffffffffffffffff are above it). */
static int get_u64(yajl_val v, const char *path, uint64_t *out, struct berr *err)
{
	const char *raw = YAJL_IS_NUMBER(v) ? YAJL_GET_NUMBER(v) : NULL;
	if (!raw || !*raw || strlen(raw) > 20)
		return berr_set(err, 0, "%s: expected an integer from 0 to 2^64-1", path);
	for (const char *p = raw; *p; p++)
		if (!isdigit((unsigned char)*p))
			return berr_set(err, 0, "%s: expected an integer from 0 to 2^64-1", path);
	errno = 0;
	char *end;
	unsigned long long n = strtoull(raw, &end, 10);
	if (errno || *end)
		return berr_set(err, 0, "%s: %s is out of range", path, raw);
	*out = n;
	return 0;
}

static int get_errno(yajl_val obj, const char *key, const char *path, bool *present, uint32_t *out,
		     struct berr *err)
{
	yajl_val v = json_get(obj, key);
	*present = v != NULL;
	if (!v)
		return 0;
	char p[160];
	snprintf(p, sizeof(p), "%s.%s", path, key);
	uint64_t n;
	if (get_u64(v, p, &n, err) < 0)
		return -1;
	if (n > OCI_ERRNO_MAX)
		return berr_set(err, 0, "%s: %llu is not an errno (0 to %d)", p,
				(unsigned long long)n, OCI_ERRNO_MAX);
	*out = (uint32_t)n;
	return 0;
}

/* An action name and its optional errno to a libseccomp action. */
static int parse_action(const char *name, bool has_errno, uint32_t errno_ret, const char *path,
			uint32_t *out, struct berr *err)
{
	static const struct name_value simple[] = {
	    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
	    {"SCMP_ACT_KILL", SCMP_ACT_KILL},
	    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
	    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
	    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
	    {"SCMP_ACT_LOG", SCMP_ACT_LOG},
	};
	/* As runc: ERRNO and TRACE carry EPERM unless told otherwise. */
	uint32_t e = has_errno ? errno_ret : EPERM;
	if (!strcmp(name, "SCMP_ACT_ERRNO")) {
		*out = SCMP_ACT_ERRNO(e);
		return 0;
	}
	if (!strcmp(name, "SCMP_ACT_TRACE")) {
		*out = SCMP_ACT_TRACE(e);
		return 0;
	}
	if (!strcmp(name, "SCMP_ACT_NOTIFY"))
		return berr_set(err, 0,
				"%s: action SCMP_ACT_NOTIFY is not supported (berth provides no "
				"seccomp notify listener)",
				path);
	const struct name_value *a = name_value_find(simple, ARRAY_SIZE(simple), name);
	if (!a)
		return berr_set(err, 0, "%s: unknown action \"%.64s\"", path, name);
	if (has_errno)
		return berr_set(err, 0,
				"%s: an errno return is only for SCMP_ACT_ERRNO and "
				"SCMP_ACT_TRACE, not %s",
				path, name);
	*out = (uint32_t)a->value;
	return 0;
}

static int parse_op(const char *name, const char *path, enum scmp_compare *out, struct berr *err)
{
	static const struct name_value ops[] = {
	    {"SCMP_CMP_NE", SCMP_CMP_NE},
	    {"SCMP_CMP_LT", SCMP_CMP_LT},
	    {"SCMP_CMP_LE", SCMP_CMP_LE},
	    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
	    {"SCMP_CMP_GE", SCMP_CMP_GE},
	    {"SCMP_CMP_GT", SCMP_CMP_GT},
	    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
	};
	const struct name_value *op = name_value_find(ops, ARRAY_SIZE(ops), name);
	if (!op)
		return berr_set(err, 0, "%s: unknown operator \"%.64s\"", path, name);
	*out = (enum scmp_compare)op->value;
	return 0;
}

/* "SCMP_ARCH_X86_64" to libseccomp's token, through its own names so every
 * architecture the installed libseccomp knows is accepted. */
static int parse_arch(const char *name, const char *path, uint32_t *out, struct berr *err)
{
	size_t len = strnlen(name, OCI_NAME_MAX + 1);
	if (strncmp(name, "SCMP_ARCH_", 10) || len <= 10 || len > OCI_NAME_MAX)
		return berr_set(err, 0, "%s: unknown architecture \"%.64s\"", path, name);
	char lower[OCI_NAME_MAX + 1];
	size_t n = 0;
	for (const char *p = name + 10; *p; p++)
		lower[n++] = (char)tolower((unsigned char)*p);
	lower[n] = '\0';
	uint32_t arch = LAZY(seccomp_arch_resolve_name)(lower);
	if (!arch)
		return berr_set(err, 0, "%s: unknown architecture \"%s\"", path, name);
	*out = arch;
	return 0;
}

static int parse_flag(const char *name, const char *path, unsigned int *flags, struct berr *err)
{
	if (!strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC"))
		*flags |= SECCOMP_FILTER_FLAG_TSYNC;
	else if (!strcmp(name, "SECCOMP_FILTER_FLAG_LOG"))
		*flags |= SECCOMP_FILTER_FLAG_LOG;
	else if (!strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
		*flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
	else if (!strcmp(name, "SECCOMP_FILTER_FLAG_NEW_LISTENER") ||
		 !strcmp(name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))
		return berr_set(
		    err, 0,
		    "%s: flag %s is not supported (berth provides no seccomp notify listener)",
		    path, name);
	else
		return berr_set(err, 0, "%s: unknown flag \"%.64s\"", path, name);
	return 0;
}

/* An array of strings, at most `max` long. */
static int get_strings(yajl_val obj, const char *key, const char *path, size_t max, yajl_val *out,
		       struct berr *err)
{
	if (json_get_array(obj, key, path, false, out, err) < 0)
		return -1;
	if (!*out)
		return 0;
	if ((*out)->u.array.len > max)
		return berr_set(err, 0, "%s.%s: more than %zu entries", path, key, max);
	for (size_t i = 0; i < (*out)->u.array.len; i++) {
		const char *s = json_str((*out)->u.array.values[i]);
		if (!s)
			return berr_set(err, 0, "%s.%s[%zu]: expected a string", path, key, i);
		if (strnlen(s, OCI_NAME_MAX + 1) > OCI_NAME_MAX)
			return berr_set(err, 0, "%s.%s[%zu]: longer than %d characters", path, key,
					i, OCI_NAME_MAX);
	}
	return 0;
}

static int parse_args(yajl_val list, const char *path, struct scmp_arg_cmp *args, unsigned int *n,
		      struct berr *err)
{
	*n = 0;
	if (!list)
		return 0;
	if (list->u.array.len > OCI_MAX_ARGS)
		return berr_set(err, 0, "%s.args: more than %d conditions", path, OCI_MAX_ARGS);
	for (size_t i = 0; i < list->u.array.len; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s.args[%zu]", path, i);
		yajl_val a = list->u.array.values[i];
		if (!YAJL_IS_OBJECT(a))
			return berr_set(err, 0, "%s: expected an object", p);
		if (check_fields(a, arg_fields, p, err) < 0)
			return -1;
		yajl_val iv = json_get(a, "index"), vv = json_get(a, "value"),
			 v2 = json_get(a, "valueTwo");
		const char *op_name;
		if (!iv)
			return berr_set(err, 0, "%s.index: required but missing", p);
		if (!vv)
			return berr_set(err, 0, "%s.value: required but missing", p);
		if (json_get_str(a, "op", p, true, &op_name, err) < 0)
			return -1;
		uint64_t index = 0, value = 0, value2 = 0;
		char q[200];
		snprintf(q, sizeof(q), "%s.index", p);
		if (get_u64(iv, q, &index, err) < 0)
			return -1;
		if (index >= OCI_MAX_ARGS)
			return berr_set(err, 0, "%s: %llu is not an argument index (0 to 5)", q,
					(unsigned long long)index);
		snprintf(q, sizeof(q), "%s.value", p);
		if (get_u64(vv, q, &value, err) < 0)
			return -1;
		snprintf(q, sizeof(q), "%s.valueTwo", p);
		if (v2 && get_u64(v2, q, &value2, err) < 0)
			return -1;
		enum scmp_compare op = SCMP_CMP_EQ;
		if (parse_op(op_name, p, &op, err) < 0)
			return -1;
		args[i] = (struct scmp_arg_cmp){
		    .arg = (unsigned int)index, .op = op, .datum_a = value, .datum_b = value2};
	}
	*n = (unsigned int)list->u.array.len;
	return 0;
}

static bool same_index_twice(const struct scmp_arg_cmp *args, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		for (unsigned int j = i + 1; j < n; j++)
			if (args[i].arg == args[j].arg)
				return true;
	return false;
}

/* The rules with two or more conditions added so far, their conditions in
 * argument order (as libseccomp arranges them). */
struct cond_rules {
	struct cond_rule {
		int nr;
		unsigned int n;
		size_t entry; /* index in syscalls[] */
		struct scmp_arg_cmp args[OCI_MAX_ARGS];
	} * v;
	size_t n, cap;
};

static bool same_cmp(const struct scmp_arg_cmp *a, const struct scmp_arg_cmp *b)
{
	return a->arg == b->arg && a->op == b->op && a->datum_a == b->datum_a &&
	       a->datum_b == b->datum_b;
}

/* libseccomp 2.5 never returns from adding a rule that begins with the same
 * conditions as an earlier rule of its syscall, the last of them not
 * SCMP_CMP_EQ, and then goes on differently (found by fuzz_seccomp_oci):
 * such a pair is refused, naming both entries, before libseccomp sees it. */
static int check_cond_rule(struct cond_rules *cr, int nr, const struct scmp_arg_cmp *args,
			   unsigned int n, size_t entry, const char *path, const char *name,
			   struct berr *err)
{
	if (n < 2)
		return 0;
	struct cond_rule r = {.nr = nr, .n = n, .entry = entry};
	memcpy(r.args, args, n * sizeof(*args));
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && r.args[j - 1].arg > r.args[j].arg; j--) {
			struct scmp_arg_cmp t = r.args[j];
			r.args[j] = r.args[j - 1];
			r.args[j - 1] = t;
		}
	for (size_t i = 0; i < cr->n; i++) {
		const struct cond_rule *o = &cr->v[i];
		if (o->nr != nr)
			continue;
		unsigned int k = 0;
		while (k < n && k < o->n && same_cmp(&r.args[k], &o->args[k]))
			k++;
		if (k > 0 && r.args[k - 1].op != SCMP_CMP_EQ && k < n && k < o->n)
			return berr_set(err, 0,
					"%s: %s: its conditions and those of %s.syscalls[%zu] "
					"begin alike up to one that is not SCMP_CMP_EQ and then "
					"differ, which libseccomp cannot build (it never returns); "
					"merge the two or reorder their conditions",
					path, name, OCI_PATH, o->entry);
	}
	if (cr->n == cr->cap) {
		size_t cap = cr->cap ? cr->cap * 2 : 16;
		struct cond_rule *v = realloc(cr->v, cap * sizeof(*v));
		if (!v)
			return berr_set(err, ENOMEM, "%s", path);
		cr->v = v;
		cr->cap = cap;
	}
	cr->v[cr->n++] = r;
	return 0;
}

static int add_rule(struct sc_build *b, struct cond_rules *cr, size_t entry, const char *name,
		    uint32_t action, const struct scmp_arg_cmp *args, unsigned int n,
		    const char *path, struct berr *err)
{
	int nr = LAZY(seccomp_syscall_resolve_name)(name);
	if (nr == __NR_SCMP_ERROR) {
		log_debug("%s: syscall %s unknown to libseccomp, skipped", path, name);
		return 0;
	}
	if (check_cond_rule(cr, nr, args, n, entry, path, name, err) < 0)
		return -1;
	int rc = LAZY(seccomp_rule_add_array)(b->ctx, action, nr, n, n ? args : NULL);
	if (rc < 0 && rc != -EEXIST)
		return berr_set(err, -rc, "%s: rule for %s", path, name);
	return 0;
}

static int parse_syscall(struct sc_build *b, struct cond_rules *cr, size_t entry, yajl_val sc,
			 uint32_t default_action, const char *path, size_t *names_total,
			 struct berr *err)
{
	if (!YAJL_IS_OBJECT(sc))
		return berr_set(err, 0, "%s: expected an object", path);
	if (check_fields(sc, syscall_fields, path, err) < 0)
		return -1;
	yajl_val names, arglist;
	const char *action_name;
	if (json_get_str(sc, "action", path, true, &action_name, err) < 0 ||
	    get_strings(sc, "names", path, OCI_MAX_NAMES, &names, err) < 0 ||
	    json_get_array(sc, "args", path, false, &arglist, err) < 0)
		return -1;
	if (!names || names->u.array.len == 0)
		return berr_set(err, 0, "%s.names: required and not empty", path);
	*names_total += names->u.array.len;
	if (*names_total > OCI_MAX_NAMES)
		return berr_set(err, 0, "%s: more than %d syscall names in all", OCI_PATH,
				OCI_MAX_NAMES);
	bool has_errno;
	uint32_t errno_ret = 0, action;
	if (get_errno(sc, "errnoRet", path, &has_errno, &errno_ret, err) < 0 ||
	    parse_action(action_name, has_errno, errno_ret, path, &action, err) < 0)
		return -1;
	struct scmp_arg_cmp args[OCI_MAX_ARGS];
	unsigned int n_args;
	if (parse_args(arglist, path, args, &n_args, err) < 0)
		return -1;

	for (size_t i = 0; i < names->u.array.len; i++)
		sc_build_note_name(b, json_str(names->u.array.values[i]));
	/* libseccomp refuses a rule that repeats the default action; it would
	 * change nothing. */
	if (action == default_action)
		return 0;
	for (size_t i = 0; i < names->u.array.len; i++) {
		const char *name = json_str(names->u.array.values[i]);
		/* Two conditions on one argument: each is its own rule (either may
		 * match), as runc reads them; otherwise all must hold. */
		if (same_index_twice(args, n_args)) {
			for (unsigned int k = 0; k < n_args; k++)
				if (add_rule(b, cr, entry, name, action, &args[k], 1, path, err) <
				    0)
					return -1;
		} else if (add_rule(b, cr, entry, name, action, args, n_args, path, err) < 0) {
			return -1;
		}
	}
	return 0;
}

int sc_oci_build(void *seccomp_val, struct sc_build *b, unsigned int *flags, struct berr *err)
{
	yajl_val s = seccomp_val;
	*flags = 0;
	if (!YAJL_IS_OBJECT(s))
		return berr_set(err, 0, "%s: expected an object", OCI_PATH);
	if (check_fields(s, seccomp_fields, OCI_PATH, err) < 0)
		return -1;
	const char *default_name;
	yajl_val arches, flag_list, syscalls;
	if (json_get_str(s, "defaultAction", OCI_PATH, true, &default_name, err) < 0 ||
	    get_strings(s, "architectures", OCI_PATH, OCI_MAX_LIST, &arches, err) < 0 ||
	    get_strings(s, "flags", OCI_PATH, OCI_MAX_LIST, &flag_list, err) < 0 ||
	    json_get_array(s, "syscalls", OCI_PATH, false, &syscalls, err) < 0)
		return -1;
	bool has_errno;
	uint32_t errno_ret = 0, default_action;
	if (get_errno(s, "defaultErrnoRet", OCI_PATH, &has_errno, &errno_ret, err) < 0 ||
	    parse_action(default_name, has_errno, errno_ret, OCI_PATH ".defaultAction",
			 &default_action, err) < 0)
		return -1;
	if (syscalls && syscalls->u.array.len > OCI_MAX_SYSCALL_ENTRIES)
		return berr_set(err, 0, "%s.syscalls: more than %d entries", OCI_PATH,
				OCI_MAX_SYSCALL_ENTRIES);
	for (size_t i = 0; flag_list && i < flag_list->u.array.len; i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s.flags[%zu]", OCI_PATH, i);
		if (parse_flag(json_str(flag_list->u.array.values[i]), p, flags, err) < 0)
			return -1;
	}

	if (sc_build_init(b, default_action, err) < 0)
		return -1;
	/* Syscalls newer than the profile fail with ENOSYS rather than the
	 * default action when that action refuses, so libc can fall back. */
	b->enosys_above_known = default_action != SCMP_ACT_ALLOW && default_action != SCMP_ACT_LOG;
	for (size_t i = 0; arches && i < arches->u.array.len; i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s.architectures[%zu]", OCI_PATH, i);
		uint32_t arch = 0;
		const char *name = json_str(arches->u.array.values[i]);
		if (parse_arch(name, p, &arch, err) < 0)
			goto fail;
		if (sc_build_add_arch(b, arch, err) < 0) {
			berr_wrap(err, "%s (%s)", p, name);
			goto fail;
		}
	}
	size_t names_total = 0;
	struct cond_rules cr = {0};
	for (size_t i = 0; syscalls && i < syscalls->u.array.len; i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s.syscalls[%zu]", OCI_PATH, i);
		if (parse_syscall(b, &cr, i, syscalls->u.array.values[i], default_action, p,
				  &names_total, err) < 0) {
			free(cr.v);
			goto fail;
		}
	}
	free(cr.v);
	return 0;
fail:
	sc_build_free(b);
	return -1;
}
