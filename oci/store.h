/* Private to oci/: the store's internals, shared by its files (see oci/oci.h
 * for the layout). Directory fds are opened once; names under them are digests'
 * hex parts or escaped references, never paths from outside. */
#ifndef BERTH_OCI_STORE_H
#define BERTH_OCI_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "oci/oci.h"
#include "registry/registry.h"

struct oci_store {
	char *path; /* <root>/oci */
	int dir_fd;
	int blobs_fd;  /* blobs/sha256 */
	int layers_fd; /* layers/sha256 */
	int refs_fd;
	int leases_fd;
	int tmp_fd;
	int lock_fd;
};

/* What a tag points at. */
struct store_ref {
	char ref[REF_STR_MAX];
	char digest[DIGEST_STR_MAX];   /* what the reference resolved to (index or manifest) */
	char manifest[DIGEST_STR_MAX]; /* the image manifest for this machine */
	char config[DIGEST_STR_MAX];
	uint64_t size;	/* compressed layers + config, as the registry reported */
	int64_t pulled; /* Unix time */
	char platform[96];
};

/* flock(2) on <root>/oci/lock: LOCK_SH while adding content, LOCK_EX to
 * remove it (gc). Returns the lock to hand to store_unlock(), or -1. */
NODISCARD int store_lock(struct oci_store *s, int how, struct berr *err);
void store_unlock(int lock);

/* True for the temporary name of a file being written ("<name>.tmp<pid>-<tid>"):
 * half-written when its writer was killed, so never read as content. */
bool store_name_is_temporary(const char *name);

bool store_blob_exists(struct oci_store *s, const char *digest);
/* Reads a blob and checks it against its digest. */
NODISCARD int store_blob_read(struct oci_store *s, const char *digest, size_t max, char **out,
			      size_t *len, struct berr *err);
NODISCARD int store_blob_write(struct oci_store *s, const char *digest, const void *data,
			       size_t len, struct berr *err);

bool store_layer_exists(struct oci_store *s, const char *diff_id);

NODISCARD int store_ref_write(struct oci_store *s, const struct store_ref *ref, struct berr *err);
/* 1 found, 0 not found, -1 error. */
NODISCARD int store_ref_read(struct oci_store *s, const char *ref, struct store_ref *out,
			     struct berr *err);
NODISCARD int store_ref_remove(struct oci_store *s, const char *ref, struct berr *err);
/* Calls fn for each ref (sorted by name); stops when fn returns non-zero. */
NODISCARD int store_ref_each(struct oci_store *s, int (*fn)(const struct store_ref *ref, void *ctx),
			     void *ctx, struct berr *err);

/* A private work directory under tmp/, locked for as long as the fd stays
 * open so that no other store_open() clears it. */
NODISCARD int store_tmp_create(struct oci_store *s, char name[64], int *fd, struct berr *err);

#endif
