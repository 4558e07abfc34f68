/* Private to shim/: mount option words as OCI config.json and `mount -o` spell them
 * ("ro", "nosuid", "rbind", "rprivate", "mode=755", ...), split into mount(2)
 * flags, a propagation change and the file system's own data string. */
#ifndef BERTH_SHIM_MOUNTOPT_H
#define BERTH_SHIM_MOUNTOPT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define MOUNTOPT_DATA_MAX 4095 /* mount(2) copies one page of data */

struct mount_opts {
	unsigned long flags;	   /* MS_RDONLY, MS_NOSUID, ... */
	unsigned long clear;	   /* flags asked to be off ("rw", "suid", ...) */
	unsigned long propagation; /* MS_PRIVATE | MS_REC, ...; 0 if not given */
	bool bind;
	bool recursive; /* rbind */
	char data[MOUNTOPT_DATA_MAX + 1];
};

/* Parses n option words. Unknown words go to data (the file system judges
 * them); words the runtime cannot honour are refused by name. */
NODISCARD int mount_opts_parse(const char *const *opts, size_t n, struct mount_opts *out,
			       struct berr *err);

#endif
