/* Capability sets: parsing names, the container engines' default set, and
 * applying bounding/effective/permitted/inheritable/ambient to this process. */
#include "shim/security.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/lazy.h"

/* Older toolchains' kernel headers (Buildroot, Yocto) lack these. */
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT		 47
#define PR_CAP_AMBIENT_RAISE	 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* Longest name accepted ("CAP_CHECKPOINT_RESTORE" is 22 characters). */
#define CAP_NAME_MAX 64

#define CAP_BIT(c) (UINT64_C(1) << (c))

/* The set docker, containerd, podman and CRI-O give a container by default. */
static const cap_value_t default_caps[] = {
    CAP_CHOWN,	 CAP_DAC_OVERRIDE, CAP_FSETID,		 CAP_FOWNER,
    CAP_MKNOD,	 CAP_NET_RAW,	   CAP_SETGID,		 CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,	   CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,	 CAP_AUDIT_WRITE,
};

static void cleanup_cap_freep(cap_t *c)
{
	if (*c)
		LAZY(cap_free)(*c);
}
#define cleanup_cap __attribute__((cleanup(cleanup_cap_freep)))

static int read_cap_last_cap(void)
{
	char buf[16];
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			char *end;
			long v = strtol(buf, &end, 10);
			if (end != buf && v >= 0 && v < 64)
				return (int)v;
		}
	}
	/* No /proc (e.g. inside a fresh mount namespace): ask the kernel which
	 * capabilities the bounding set can name. */
	int last = -1;
	for (int c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
			break;
		last = c;
	}
	return last;
}

/* Highest capability the running kernel knows, read once. */
static int cap_last_cap(void)
{
	static int last = -2;
	int v = __atomic_load_n(&last, __ATOMIC_ACQUIRE);
	if (v == -2) {
		v = read_cap_last_cap();
		if (v < 0)
			v = CAP_LAST_CAP;
		__atomic_store_n(&last, v, __ATOMIC_RELEASE);
	}
	return v;
}

/* Every capability the running kernel knows. */
static uint64_t caps_all(void)
{
	int last = cap_last_cap();
	return last >= 63 ? UINT64_MAX : CAP_BIT(last + 1) - 1;
}

/* What this process can still hand on: its bounding set. On a normal host
 * that is every capability; inside a restricted environment (a container, a
 * sandbox) "all" can only mean what berth itself was given. */
static uint64_t caps_available(void)
{
	uint64_t m = 0;
	int last = cap_last_cap();
	for (int c = 0; c <= last; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			m |= CAP_BIT(c);
	return m;
}

static bool is_all(const char *name)
{
	return strcasecmp(name, "ALL") == 0 || strcasecmp(name, "CAP_ALL") == 0;
}

/* One name ("CAP_NET_ADMIN", "net_admin", "Net_Admin") to its number. */
static int cap_parse_name(const char *name, cap_value_t *out, struct berr *err)
{
	size_t len = strnlen(name, CAP_NAME_MAX + 1);
	if (len == 0)
		return berr_set(err, 0, "empty capability name");
	if (len > CAP_NAME_MAX)
		return berr_set(err, 0, "capability name \"%.32s...\" is too long", name);
	const char *base = name;
	if (strncasecmp(base, "CAP_", 4) == 0)
		base += 4;
	/* libcap also takes numbers ("12"); a name must be a name. */
	if (*base == '\0' || !isalpha((unsigned char)*base))
		return berr_set(err, 0, "unknown capability \"%s\"", name);
	char lower[CAP_NAME_MAX + 8] = "cap_";
	size_t n = 4;
	for (const char *p = base; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (!isalnum(ch) && ch != '_')
			return berr_set(err, 0, "unknown capability \"%s\"", name);
		lower[n++] = (char)tolower(ch);
	}
	lower[n] = '\0';
	cap_value_t v;
	if (LAZY(cap_from_name)(lower, &v) < 0 || v < 0 || v > 63)
		return berr_set(err, 0, "unknown capability \"%s\"", name);
	*out = v;
	return 0;
}

int caps_from_names(const char *const *names, uint64_t *mask, struct berr *err)
{
	if (lazy_require(LAZY_CAP, err) < 0)
		return -1;
	uint64_t m = 0;
	for (size_t i = 0; names && names[i]; i++) {
		if (is_all(names[i])) {
			m |= caps_all();
			continue;
		}
		cap_value_t v;
		if (cap_parse_name(names[i], &v, err) < 0)
			return -1;
		m |= CAP_BIT(v);
	}
	*mask = m;
	return 0;
}

static bool names_have_all(const char *const *names)
{
	for (size_t i = 0; names && names[i]; i++)
		if (is_all(names[i]))
			return true;
	return false;
}

/* Names other than "ALL" as a mask. */
static int named_caps(const char *const *names, const char *what, uint64_t *mask, struct berr *err)
{
	uint64_t m = 0;
	for (size_t i = 0; names && names[i]; i++) {
		if (is_all(names[i]))
			continue;
		cap_value_t v;
		if (cap_parse_name(names[i], &v, err) < 0)
			return berr_wrap(err, "%s", what);
		m |= CAP_BIT(v);
	}
	*mask = m;
	return 0;
}

int caps_default_sets(const char *const *add, const char *const *drop, bool privileged,
		      struct cap_sets *out, struct berr *err)
{
	uint64_t add_mask, drop_mask;
	if (lazy_require(LAZY_CAP, err) < 0)
		return -1;
	if (named_caps(add, "cap-add", &add_mask, err) < 0 ||
	    named_caps(drop, "cap-drop", &drop_mask, err) < 0)
		return -1;

	uint64_t set = 0;
	if (privileged) {
		set = caps_available();
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
			set |= CAP_BIT(default_caps[i]);
	}
	/* As docker: "drop ALL" empties the set before the additions and "add
	 * ALL" grants everything but the drops. A capability named in both lists
	 * is dropped: the safer reading of a contradiction. */
	if (names_have_all(drop))
		set = 0;
	if (names_have_all(add))
		set = caps_available();
	set |= add_mask;
	set &= ~drop_mask;
	/* A capability libcap can name but this kernel lacks cannot be granted. */
	set &= caps_all();

	/* Inheritable and ambient stay empty (the engines' answer to
	 * CVE-2022-24769): a non-root process gains nothing across exec. */
	*out = (struct cap_sets){
	    .bounding = set,
	    .effective = set,
	    .permitted = set,
	    .inheritable = 0,
	    .ambient = 0,
	};
	return 0;
}

static const char *cap_label(int c, char buf[32])
{
	char *name = LAZY(cap_to_name)(c);
	if (!name) {
		snprintf(buf, 32, "capability %d", c);
		return buf;
	}
	for (char *p = name; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	snprintf(buf, 32, "%s", name);
	LAZY(cap_free)(name);
	return buf;
}

static int cap_set_mask(cap_t caps, cap_flag_t flag, uint64_t mask, int last)
{
	cap_value_t list[64];
	int n = 0;
	for (int c = 0; c <= last; c++)
		if (mask & CAP_BIT(c))
			list[n++] = c;
	return n ? LAZY(cap_set_flag)(caps, flag, n, list, CAP_SET) : 0;
}

/* Sets this process's effective, permitted and inheritable sets at once. */
static int set_proc_caps(uint64_t eff, uint64_t prm, uint64_t inh, int last, struct berr *err)
{
	cleanup_cap cap_t caps = LAZY(cap_init)();
	if (!caps)
		return berr_set(err, errno, "cap_init");
	if (cap_set_mask(caps, CAP_EFFECTIVE, eff, last) < 0 ||
	    cap_set_mask(caps, CAP_PERMITTED, prm, last) < 0 ||
	    cap_set_mask(caps, CAP_INHERITABLE, inh, last) < 0)
		return berr_set(err, errno, "cap_set_flag");
	if (LAZY(cap_set_proc)(caps) < 0)
		return berr_set(err, errno, "capset");
	return 0;
}

static int current_permitted(uint64_t *out, int last, struct berr *err)
{
	cleanup_cap cap_t caps = LAZY(cap_get_proc)();
	if (!caps)
		return berr_set(err, errno, "cap_get_proc");
	uint64_t m = 0;
	for (int c = 0; c <= last; c++) {
		cap_flag_value_t v = CAP_CLEAR;
		if (LAZY(cap_get_flag)(caps, c, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			m |= CAP_BIT(c);
	}
	*out = m;
	return 0;
}

int caps_apply(const struct cap_sets *sets, struct berr *err)
{
	/* Loaded before the instance's root changed (sandbox_start). */
	if (lazy_require(LAZY_CAP, err) < 0)
		return -1;
	int last = cap_last_cap();
	uint64_t known = caps_all();
	char label[32];

	if (sets->effective & ~sets->permitted & known) {
		int c = __builtin_ctzll(sets->effective & ~sets->permitted & known);
		return berr_set(err, 0, "capabilities: %s is effective but not permitted",
				cap_label(c, label));
	}
	uint64_t amb_missing = sets->ambient & ~(sets->permitted & sets->inheritable) & known;
	if (amb_missing) {
		int c = __builtin_ctzll(amb_missing);
		return berr_set(err, 0,
				"capabilities: ambient %s must be permitted and inheritable",
				cap_label(c, label));
	}

	/* After a switch to a non-root uid (with PR_SET_KEEPCAPS) the effective
	 * set is empty; CAP_SETPCAP must be effective to shrink the bounding
	 * set, so raise everything still permitted first. */
	uint64_t prm = 0;
	if (current_permitted(&prm, last, err) < 0)
		return berr_wrap(err, "capabilities");
	uint64_t missing = sets->permitted & ~prm & known;
	if (missing) {
		int c = __builtin_ctzll(missing);
		return berr_set(err, 0, "capabilities: %s is not available to berth itself",
				cap_label(c, label));
	}
	if (set_proc_caps(prm, prm, 0, last, err) < 0)
		return berr_wrap(err, "capabilities: raise effective");

	for (int c = 0; c <= last; c++) {
		if (sets->bounding & CAP_BIT(c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return berr_set(err, errno, "capabilities: drop %s from the bounding set",
					cap_label(c, label));
	}

	if (set_proc_caps(sets->effective, sets->permitted, sets->inheritable, last, err) < 0)
		return berr_wrap(err, "capabilities: set effective/permitted/inheritable");

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		/* Kernels before 4.3 have no ambient set; fine unless one is asked for. */
		if (errno != EINVAL || (sets->ambient & known))
			return berr_set(err, errno, "capabilities: clear the ambient set");
		return 0;
	}
	for (int c = 0; c <= last; c++) {
		if (!(sets->ambient & CAP_BIT(c)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			return berr_set(err, errno, "capabilities: raise ambient %s",
					cap_label(c, label));
	}
	return 0;
}
