/* A client for the OCI distribution API: image references, the
 * WWW-Authenticate challenge, and verified fetches of manifests and blobs
 * with auth (anonymous, Basic, Bearer), redirects, retries and resume.
 *
 * Every byte handed out by a fetch is checked against the digest it was
 * asked by: a fetch that ends with the wrong content ends with an error, so
 * callers must treat what they consumed as unverified until the end. */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/digest.h"
#include "common/err.h"

/* ---- image references ------------------------------------------------ */

#define REF_DOMAIN_MAX 256
#define REF_PATH_MAX   256
#define REF_TAG_MAX    129
#define REF_STR_MAX    (REF_DOMAIN_MAX + REF_PATH_MAX + REF_TAG_MAX + DIGEST_STR_MAX + 4)

/* "docker.io/library/busybox:1.36", "127.0.0.1:5000/app@sha256:..." */
struct image_ref {
	char domain[REF_DOMAIN_MAX]; /* "docker.io", "127.0.0.1:5000" */
	char path[REF_PATH_MAX];     /* "library/busybox" */
	char tag[REF_TAG_MAX];	     /* "" when only a digest was given */
	char digest[DIGEST_STR_MAX]; /* "" when none was given */
};

/* Parses a reference as Docker does: no domain means docker.io (and
 * "library/" for one-component names there), no tag and no digest means
 * ":latest". Refuses upper case in the path, empty components, over-long
 * names and malformed digests. */
NODISCARD int image_ref_parse(const char *s, struct image_ref *ref, struct berr *err);
/* The normalized form: domain/path[:tag][@digest]. */
void image_ref_format(const struct image_ref *ref, char out[REF_STR_MAX]);
/* The host the API lives on ("registry-1.docker.io" for docker.io). */
const char *image_ref_api_host(const struct image_ref *ref);

/* ---- WWW-Authenticate ------------------------------------------------ */

enum auth_scheme { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct auth_challenge {
	enum auth_scheme scheme;
	char realm[1024];
	char service[256];
	char scope[512];
};

/* Parses one WWW-Authenticate value (`Bearer realm="...",service="...",
 * scope="..."` or `Basic realm="..."`). Unknown schemes and parameters are
 * refused or ignored; quoted strings may hold escaped quotes. */
NODISCARD int auth_challenge_parse(const char *value, struct auth_challenge *out, struct berr *err);

/* ---- the client ------------------------------------------------------ */

struct registry_opts {
	bool insecure;	      /* plain HTTP instead of HTTPS */
	const char *username; /* NULL: anonymous */
	const char *password;
	const char *ca_file; /* extra CA bundle on top of the system's, or NULL */
	int timeout;	     /* seconds without progress before giving up; 0: 30 */
};

struct registry;

/* A client for one repository (ref's domain and path). Loads libcurl. */
NODISCARD int registry_open(const struct image_ref *ref, const struct registry_opts *opts,
			    struct registry **out, struct berr *err);
void registry_close(struct registry *r);
/* Makes every fetch in progress fail soon with "cancelled" (thread-safe). */
void registry_cancel(struct registry *r);

#define MANIFEST_MAX   (4u << 20)
#define MEDIA_TYPE_MAX 256

/* Fetches the manifest (or index) named by a tag or a digest into a
 * malloc'd buffer; refuses bodies over MANIFEST_MAX. Checks the body against
 * the digest asked for and against Docker-Content-Digest when sent; writes
 * the body's digest and the media type (Content-Type, else the body's
 * "mediaType"; may be ""). */
NODISCARD int registry_get_manifest(struct registry *r, const char *reference, char **body,
				    size_t *len, char media_type[MEDIA_TYPE_MAX],
				    char digest[DIGEST_STR_MAX], struct berr *err);

/* Fetches a whole small blob (an image config), verified, at most max bytes. */
NODISCARD int registry_get_blob(struct registry *r, const char *digest, uint64_t size, size_t max,
				char **body, size_t *len, struct berr *err);

/* A blob read as a stream: registry_blob_read() hands out up to len bytes,
 * 0 at the end once size bytes came and the digest matched, -1 with err on
 * failure. Connection resets, 5xx answers and truncated bodies are retried
 * with backoff and resumed with Range where the registry allows it. */
struct registry_blob;

NODISCARD int registry_blob_open(struct registry *r, const char *digest, uint64_t size,
				 struct registry_blob **out, struct berr *err);
NODISCARD ssize_t registry_blob_read(struct registry_blob *b, void *buf, size_t len,
				     struct berr *err);
/* Bytes received and verified so far (for progress). */
uint64_t registry_blob_received(const struct registry_blob *b);
void registry_blob_close(struct registry_blob *b);

#endif
