/* Private to oci/: layers on disk, in the form overlayfs reads them: a whiteout is a 0/0
 * character device, an opaque directory carries trusted.overlay.opaque=y. */
#ifndef BERTH_OCI_LAYER_H
#define BERTH_OCI_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Pull-style source of an uncompressed tar stream: read up to len bytes
 * into buf; returns the count, 0 at the end, -1 with err set on failure
 * (digest mismatch, network error: the unpack then fails with that error). */
struct layer_source {
	ssize_t (*read)(void *ctx, void *buf, size_t len, struct berr *err);
	void *ctx;
};

struct layer_stats {
	uint64_t entries;
	uint64_t bytes;	  /* regular file content written */
	uint64_t skipped; /* entries skipped with a warning (device nodes, ...) */
};

/* Extracts a tar stream into the empty directory dirfd. Nothing is created,
 * changed or chmod-ed outside it, whatever the entries say. `what` names the
 * layer in messages ("layer sha256:..."; the caller adds the image). Files
 * are not fsync-ed one by one: the caller syncs the file system before
 * publishing the layer (syncfs). The directory gets mode 0755 unless the
 * layer has a "./" entry, and the source is read to its end (past the tar's
 * end blocks) so a digest over it covers everything. Which entries fail the
 * unpack and which are skipped with a warning: see oci/unpack.c. */
NODISCARD int layer_unpack(int dirfd, const struct layer_source *src, const char *what,
			   struct layer_stats *stats, struct berr *err);

/* Writes the flattened root filesystem of layer_dirs (bottom first, in
 * overlay form) into the directory dst (which must exist and be empty),
 * applying whiteouts and opaque directories; hardlinks within one layer are
 * kept as hardlinks. */
NODISCARD int layer_flatten(const char *const *layer_dirs, size_t n, const char *dst,
			    struct berr *err);

#endif
