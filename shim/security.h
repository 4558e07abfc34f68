/* Private to shim/: what an instance may do: capability sets (libcap) and the seccomp filter
 * (libseccomp). Applied in the instance's process right before exec. */
#ifndef BERTH_SHIM_SECURITY_H
#define BERTH_SHIM_SECURITY_H

#include <stdbool.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/err.h"

struct cap_sets {
	uint64_t bounding;
	uint64_t effective;
	uint64_t permitted;
	uint64_t inheritable;
	uint64_t ambient;
};

/* Parses names like "CAP_NET_ADMIN" or "net_admin" (any case, with or without
 * "CAP_"; "ALL" is every capability the running kernel knows) into a mask of
 * (1 << CAP_x). An unknown name is an error naming it. */
NODISCARD int caps_from_names(const char *const *names, uint64_t *mask, struct berr *err);
/* The container engines' default set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER,
 * MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
 * SYS_CHROOT, KILL, AUDIT_WRITE), or every capability the running kernel
 * knows when privileged; then drop "ALL" empties it, add "ALL" fills it, the
 * named additions are added and the named drops removed (a name in both
 * lists is dropped). Bounding, effective and permitted get the result;
 * inheritable and ambient stay empty, as with the engines. */
NODISCARD int caps_default_sets(const char *const *add, const char *const *drop, bool privileged,
				struct cap_sets *out, struct berr *err);
/* Applies sets to the calling process: raises the effective set to what is
 * still permitted, drops every capability outside `bounding` from the
 * bounding set (PR_CAPBSET_DROP), sets effective/permitted/inheritable
 * (capset), then clears the ambient set and raises `ambient` in it.
 *
 * Ordering with the uid switch, in the instance's process before exec:
 *   prctl(PR_SET_KEEPCAPS, 1);     keep the permitted set across setresuid
 *   setgroups(); setresgid(); setresuid();
 *   caps_apply(&sets, err);        restores effective from permitted
 *   prctl(PR_SET_NO_NEW_PRIVS, 1); seccomp_load_default(...); execve(...)
 * Called before the uid switch instead, the switch to a non-root uid would
 * clear the permitted set again. For a non-root process the sets survive
 * execve only through the ambient set (as with the engines, it is empty by
 * default). Refuses effective outside permitted and ambient outside
 * permitted & inheritable, naming the capability. */
NODISCARD int caps_apply(const struct cap_sets *sets, struct berr *err);

/* Builds and loads the default seccomp allow-list (equivalent to the one
 * container engines ship, for the running architecture and its 32-bit/x32
 * companions; syscalls that need a capability are allowed only when
 * `effective_caps` holds it; everything else fails with EPERM, syscalls newer
 * than the profile with ENOSYS). docs/SECCOMP.md lists it. Needs
 * no_new_privs or CAP_SYS_ADMIN: load it as the last step before execve when
 * no_new_privs is set, otherwise before the capabilities are dropped (the
 * filter allows what that path calls: setresuid, capset, prctl). */
NODISCARD int seccomp_load_default(uint64_t effective_caps, struct berr *err);
/* Loads an OCI runtime-spec "linux.seccomp" object (defaultAction,
 * defaultErrnoRet, architectures, flags, syscalls[] with names, action,
 * errnoRet, args). As runc: syscall names unknown to libseccomp are skipped;
 * unknown fields, actions, operators, architectures and flags are refused by
 * name, as is SCMP_ACT_NOTIFY (no listener). */
NODISCARD int seccomp_load_oci(yajl_val seccomp, struct berr *err);

/* The same in two steps, so the costly part runs where it is convenient:
 * build in the shim before clone (where the cache directory is reachable),
 * load in the instance's process right before execve (no allocation, one
 * syscall). Building takes milliseconds; a cache hit or a load, well under
 * one (docs/SECCOMP.md has the figures). */
struct seccomp_filter;
NODISCARD int seccomp_filter_default(uint64_t effective_caps, struct seccomp_filter **out,
				     struct berr *err);
NODISCARD int seccomp_filter_oci(yajl_val seccomp, struct seccomp_filter **out, struct berr *err);
NODISCARD int seccomp_filter_load(const struct seccomp_filter *filter, struct berr *err);
void seccomp_filter_free(struct seccomp_filter *filter);

/* Keeps compiled filters in `dir` (e.g. "<run>/seccomp", created 0700; it
 * must belong to this uid and be writable by it alone), shared by every
 * process that sets the same directory. NULL turns the cache off (the
 * default). */
NODISCARD int seccomp_set_cache_dir(const char *dir, struct berr *err);

#endif
