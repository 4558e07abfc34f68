/* Private to shim/: what seccomp*.c share: building a libseccomp filter, compiling it to
 * BPF with the ENOSYS prologue, and loading the program with seccomp(2). */
#ifndef BERTH_SHIM_SECCOMP_INTERNAL_H
#define BERTH_SHIM_SECCOMP_INTERNAL_H

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SC_MAX_ARCHES 24

/* A filter under construction: the libseccomp context, its architectures,
 * and per architecture the highest syscall number the profile names. */
struct sc_build {
	scmp_filter_ctx ctx;
	uint32_t arches[SC_MAX_ARCHES];
	int64_t max_nr[SC_MAX_ARCHES];
	int n_arches;
	/* Syscalls above max_nr get ENOSYS instead of the default action, so
	 * a libc newer than the profile falls back to older calls. */
	bool enosys_above_known;
};

/* A compiled program, ready for seccomp(2) (opaque in security.h). */
struct seccomp_filter {
	struct sock_filter *insns;
	size_t len;
	unsigned int flags; /* SECCOMP_FILTER_FLAG_* */
};

NODISCARD int sc_build_init(struct sc_build *b, uint32_t default_action, struct berr *err);
/* Adds an architecture (no-op when already present). */
NODISCARD int sc_build_add_arch(struct sc_build *b, uint32_t arch, struct berr *err);
/* Records that the profile knows `name` (for the ENOSYS prologue). */
void sc_build_note_name(struct sc_build *b, const char *name);
void sc_build_free(struct sc_build *b);

/* Exports the context to BPF and puts the ENOSYS prologue in front. */
NODISCARD int sc_compile(struct sc_build *b, struct seccomp_filter *out, struct berr *err);

/* Compiled programs kept in the cache directory (seccomp_set_cache_dir),
 * found by their full key text. A miss or an unusable entry returns -1
 * without an error: the caller builds. */
int sc_cache_get(const char *name, const char *key, size_t key_len, struct seccomp_filter *out);
void sc_cache_put(const char *name, const char *key, size_t key_len,
		  const struct seccomp_filter *f);

/* The default profile (shim/seccomp_profile.c). */
NODISCARD int sc_default_build(uint64_t effective_caps, struct sc_build *b, struct berr *err);
/* Capabilities the default profile looks at: only these change the filter. */
uint64_t sc_default_caps_mask(void);
/* Text that changes whenever the default profile's rules change. */
const char *sc_default_profile_id(void);

/* The OCI "linux.seccomp" object (shim/seccomp_oci.c). */
NODISCARD int sc_oci_build(void *seccomp_val, struct sc_build *b, unsigned int *flags,
			   struct berr *err);

#endif
