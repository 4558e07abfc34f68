/* Content digests ("sha256:<64 hex>", "sha512:<128 hex>") computed while data
 * streams through. */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Longest digest string: "sha512:" + 128 hex digits + NUL. */
#define DIGEST_STR_MAX 136

struct digester;

/* Checks the form of a digest string (known algorithm, lower-case hex of the
 * right length). */
bool digest_is_valid(const char *digest);
/* The hex part of a valid digest (after "sha256:"). */
const char *digest_hex(const char *digest);

/* algo is "sha256" or "sha512"; NULL on allocation failure or unknown algo. */
struct digester *digester_new(const char *algo);
/* Same algorithm as the given digest string. */
struct digester *digester_for(const char *digest);
void digester_update(struct digester *d, const void *data, size_t len);
/* Writes "algo:hex" into out (DIGEST_STR_MAX bytes). The digester can then
 * only be freed. */
void digester_final(struct digester *d, char out[DIGEST_STR_MAX]);
void digester_free(struct digester *d);

/* One-shot sha256 of a buffer as "sha256:<hex>". */
void digest_sha256(const void *data, size_t len, char out[DIGEST_STR_MAX]);

/* Compares data against an expected digest; fills err naming `what`. */
NODISCARD int digest_verify(const void *data, size_t len, const char *expected, const char *what,
			    struct berr *err);

/* FNV-1a, 64 bits, over len bytes, continuing from h (FNV1A_INIT to start):
 * names for caches and change detection, never where someone could choose
 * input to collide (digests are for that). */
#define FNV1A_INIT UINT64_C(0xcbf29ce484222325)
uint64_t fnv1a(uint64_t h, const void *data, size_t len);

#endif
