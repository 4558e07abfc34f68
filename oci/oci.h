/* The image store: pulling images from a registry, keeping manifests and
 * configs by digest and each layer unpacked once (by diff_id) in the form
 * overlayfs needs, and handing out what an instance needs to start.
 *
 * Layout under <root>/oci:
 *   blobs/sha256/<hex>       manifests, indexes and configs, by digest
 *   layers/sha256/<hex>/     one unpacked layer per diff_id (read-only, shared)
 *   refs/<escaped ref>       JSON {"ref","digest","config","pulled"} per tagged image
 *   leases/<name>            manifest digest an instance still uses (kept by gc)
 *   tmp/                     work in progress; cleared on open
 *   lock                     flock(2) held while the store changes
 */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "common/digest.h"
#include "common/err.h"

struct oci_store;

NODISCARD int oci_store_open(const char *root, struct oci_store **out, struct berr *err);
void oci_store_close(struct oci_store *store);

struct oci_pull_opts {
	bool insecure;	      /* allow plain HTTP and unverified TLS for this registry */
	const char *platform; /* "os/arch[/variant]"; NULL: the host's */
	const char *username; /* registry credentials, or NULL */
	const char *password;
	const char *ca_file; /* extra CA bundle for this registry, or NULL */
	bool progress;	     /* progress bars on stderr (only if it is a terminal) */
	int timeout;	     /* seconds without data before a registry counts as gone; 0: 30 */
};

/* Completes opts for ref's registry from the daemon config's "registries"
 * object (by host: username, password, insecure, ca_file) and from a
 * deployment's runtime.settings.registryCredentials object (by address:
 * username, password); either may be NULL. What opts already has wins, then
 * the config, then the deployment. Strings point into the JSON. */
NODISCARD int oci_pull_opts_for(const char *ref, yajl_val registries, yajl_val registry_credentials,
				struct oci_pull_opts *opts, struct berr *err);

/* Pulls ref (e.g. "127.0.0.1:5000/app:1", "ghcr.io/x/y@sha256:...") into the
 * store and tags it; writes the digest the reference resolved to (the
 * index's for a multi-platform image, as `docker pull` shows it). Layers
 * already present are not fetched again. On failure the store is as it was.
 * Safe to call from several threads at once. */
NODISCARD int oci_pull(struct oci_store *store, const char *ref, const struct oci_pull_opts *opts,
		       char digest[DIGEST_STR_MAX], struct berr *err);

/* An image as an instance needs it, read from the store only (no network). */
struct oci_image {
	char *ref;		     /* as given (normalized) */
	char digest[DIGEST_STR_MAX]; /* the image manifest's digest (this platform's) */
	size_t n_layers;
	char **layer_dirs; /* absolute paths, bottom layer first */
	/* From the image config ("config" object); NULL-terminated arrays, NULL if unset. */
	char **entrypoint;
	char **cmd;
	char **env;
	char *working_dir;
	char *user;
	char *os;
	char *architecture;
	char *healthcheck; /* the config's Healthcheck as compact JSON, NULL if unset */
};

/* Looks up ref (a name, name:tag, name@digest or a bare manifest digest). */
NODISCARD int oci_image_open(struct oci_store *store, const char *ref, struct oci_image **out,
			     struct berr *err);
void oci_image_free(struct oci_image *img);

/* Writes ref's flattened root filesystem into dir (created if missing, else
 * it must be empty), as `umoci unpack` writes a bundle's rootfs. Holds the
 * store shared from the lookup to the last file, as a pull does, so a gc
 * waits for it instead of removing layers it is reading. */
NODISCARD int oci_export(struct oci_store *store, const char *ref, const char *dir,
			 struct berr *err);

/* An instance that uses an image holds a lease on its manifest digest, so
 * `berth rmi` + `berth gc` never remove layers under a live instance. The
 * image must be in the store, whole, when the lease is taken: a gc that
 * removed it after the caller opened it makes the lease fail (ENOENT). */
NODISCARD int oci_lease_add(struct oci_store *store, const char *name, const char *digest,
			    struct berr *err);
NODISCARD int oci_lease_remove(struct oci_store *store, const char *name, struct berr *err);
/* The same lease for an instance that ends with the process that runs it
 * (berth run --rm): written without fsync, as it needs to outlive neither
 * the instance nor a crash. */
NODISCARD int oci_lease_add_ephemeral(struct oci_store *store, const char *name, const char *digest,
				      struct berr *err);

/* Tagged images, for `berth images`. */
struct oci_image_info {
	const char *ref;      /* normalized reference */
	const char *digest;   /* what the reference resolved to (index or manifest) */
	const char *manifest; /* the image manifest for this machine */
	uint64_t size;	      /* compressed layers + config */
	int64_t pulled;	      /* Unix time */
};
NODISCARD int oci_image_list(struct oci_store *store,
			     int (*fn)(const struct oci_image_info *info, void *ctx), void *ctx,
			     struct berr *err);

/* Removes the tag ref (name[:tag]); for name@digest or a bare digest, every
 * tag pointing at that digest. fn is told each reference removed. Fails
 * when nothing matched. */
NODISCARD int oci_untag(struct oci_store *store, const char *ref,
			void (*fn)(const char *ref, void *ctx), void *ctx, struct berr *err);

/* Removes blobs and layers reachable from no tag and no lease; fn is told
 * each thing removed ("layer sha256:...", "blob sha256:...") and its size. */
NODISCARD int oci_gc(struct oci_store *store,
		     void (*fn)(const char *what, uint64_t bytes, void *ctx), void *ctx,
		     uint64_t *freed, struct berr *err);

#endif
