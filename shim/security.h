/* What an instance may do: capability sets (libcap) and the seccomp filter
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

/* Parses names like "CAP_NET_ADMIN" or "net_admin" (and "ALL") into a mask. */
int caps_from_names(const char *const *names, uint64_t *mask, struct berr *err);
/* The container engines' default set, with add/drop applied (drop "ALL"
 * first when given), or every capability when privileged. */
int caps_default_sets(const char *const *add, const char *const *drop, bool privileged,
		      struct cap_sets *out, struct berr *err);
/* Drops the bounding set, then sets effective/permitted/inheritable and the
 * ambient set. Call after switching uid/gid (with PR_SET_KEEPCAPS). */
int caps_apply(const struct cap_sets *sets, struct berr *err);

/* Builds and loads the default seccomp allow-list (equivalent to the one
 * container engines ship, for the running architecture; syscalls that need a
 * capability are allowed only when `caps` holds it). Needs no_new_privs or
 * CAP_SYS_ADMIN. */
int seccomp_load_default(uint64_t effective_caps, struct berr *err);
/* Loads an OCI runtime-spec "linux.seccomp" object; unsupported fields are
 * refused by name. */
int seccomp_load_oci(yajl_val seccomp, struct berr *err);

#endif
