/* Private to shim/: the per-instance directory shared by `berth run`, the shim and the
 * functions of shim.h. */
#ifndef BERTH_SHIM_INSTANCE_H
#define BERTH_SHIM_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "shim/sandbox.h"
#include "shim/shim.h"

#define INSTANCE_USERNS_BASE 100000u /* first host id of --userns (65536 ids) */
#define INSTANCE_USERNS_SIZE 65536u

/* <root>/instances/<name>, checking the name. */
NODISCARD int instance_dir_path(const char *root, const char *name, char *buf, size_t len,
				struct berr *err);

/* Takes the instance's lock (flock on its directory), held by whoever
 * supervises it for as long as it runs. With create the directory is made;
 * an existing one is an error unless reuse is set. Returns the locked
 * descriptor, or -1 (EBUSY: running; EEXIST: exists, stopped). */
NODISCARD int instance_lock(const char *dir, const char *name, bool create, bool reuse,
			    struct berr *err);

/* upper/, work/, rootfs/ and the generated hostname, hosts, resolv.conf. */
NODISCARD int instance_files_prepare(const char *dir, const struct instance_spec *spec,
				     struct berr *err);

/* The contents of the instance's /etc/hostname, /etc/hosts and
 * /etc/resolv.conf (etc_files.c): the host's files with the host's network,
 * name servers from the spec, the spec's host lines added. */
NODISCARD int etc_files_contents(const struct instance_spec *spec, const char *hostname,
				 char *out[3], struct berr *err);

/* Removes the instance directory and everything in it. */
NODISCARD int instance_remove_files(const char *root, const char *name, struct berr *err);

#endif
