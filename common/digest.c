#include "common/digest.h"

#include "common/lazy.h"
#include "common/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct digester {
	EVP_MD_CTX *ctx;
	const char *algo;
};

static size_t algo_hex_len(const char *digest, const char **algo_end)
{
	if (!strncmp(digest, "sha256:", 7)) {
		*algo_end = digest + 7;
		return 64;
	}
	if (!strncmp(digest, "sha512:", 7)) {
		*algo_end = digest + 7;
		return 128;
	}
	return 0;
}

bool digest_is_valid(const char *digest)
{
	const char *hex;
	size_t n = algo_hex_len(digest, &hex);
	if (!n || strlen(hex) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	return true;
}

uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

const char *digest_hex(const char *digest)
{
	const char *c = strchr(digest, ':');
	return c ? c + 1 : digest;
}

struct digester *digester_new(const char *algo)
{
	if (lazy_require(LAZY_CRYPTO, NULL) < 0)
		return NULL;
	const EVP_MD *md;
	if (!strcmp(algo, "sha256"))
		md = LAZY(EVP_sha256)();
	else if (!strcmp(algo, "sha512"))
		md = LAZY(EVP_sha512)();
	else
		return NULL;
	struct digester *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->ctx = LAZY(EVP_MD_CTX_new)();
	if (!d->ctx || LAZY(EVP_DigestInit_ex)(d->ctx, md, NULL) != 1) {
		LAZY(EVP_MD_CTX_free)(d->ctx);
		free(d);
		return NULL;
	}
	d->algo = md == LAZY(EVP_sha256)() ? "sha256" : "sha512";
	return d;
}

struct digester *digester_for(const char *digest)
{
	return digester_new(!strncmp(digest, "sha512:", 7) ? "sha512" : "sha256");
}

void digester_update(struct digester *d, const void *data, size_t len)
{
	LAZY(EVP_DigestUpdate)(d->ctx, data, len);
}

void digester_final(struct digester *d, char out[DIGEST_STR_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	LAZY(EVP_DigestFinal_ex)(d->ctx, md, &n);
	int off = snprintf(out, DIGEST_STR_MAX, "%s:", d->algo);
	for (unsigned int i = 0; i < n && off + 2 < DIGEST_STR_MAX; i++)
		off += snprintf(out + off, DIGEST_STR_MAX - off, "%02x", md[i]);
}

void digester_free(struct digester *d)
{
	if (!d)
		return;
	LAZY(EVP_MD_CTX_free)(d->ctx);
	free(d);
}

/* Buffers in memory are small documents: hashed without libcrypto. */
void digest_sha256(const void *data, size_t len, char out[DIGEST_STR_MAX])
{
	struct sha256 s;
	uint8_t md[32];
	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, md);
	int off = snprintf(out, DIGEST_STR_MAX, "sha256:");
	for (int i = 0; i < 32; i++)
		off += snprintf(out + off, DIGEST_STR_MAX - (size_t)off, "%02x", md[i]);
}

int digest_verify(const void *data, size_t len, const char *expected, const char *what,
		  struct berr *err)
{
	if (!digest_is_valid(expected))
		return berr_set(err, 0, "%s: invalid digest \"%.80s\"", what, expected);
	char got[DIGEST_STR_MAX];
	if (!strncmp(expected, "sha256:", 7)) {
		digest_sha256(data, len, got);
		if (strcmp(got, expected))
			return berr_set(err, 0, "%s: digest mismatch: expected %s, got %s", what,
					expected, got);
		return 0;
	}
	struct digester *d = digester_for(expected);
	if (!d)
		return berr_set(err, 0, "%s: cannot hash", what);
	digester_update(d, data, len);
	digester_final(d, got);
	digester_free(d);
	if (strcmp(got, expected))
		return berr_set(err, 0, "%s: digest mismatch: expected %s, got %s", what, expected,
				got);
	return 0;
}
