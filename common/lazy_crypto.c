/* libcrypto, loaded on first use (see common/lazy.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/lazy.h"

LAZY_FN(LAZY_CRYPTO, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
LAZY_VOID_FN(LAZY_CRYPTO, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
LAZY_FN(LAZY_CRYPTO, const EVP_MD *, EVP_sha256, (void), ())
LAZY_FN(LAZY_CRYPTO, const EVP_MD *, EVP_sha512, (void), ())
LAZY_FN(LAZY_CRYPTO, int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD *type, ENGINE *impl),
	(ctx, type, impl))
LAZY_FN(LAZY_CRYPTO, int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void *d, size_t cnt),
	(ctx, d, cnt))
LAZY_FN(LAZY_CRYPTO, int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char *md, unsigned int *s),
	(ctx, md, s))
LAZY_FN(LAZY_CRYPTO, unsigned char *, HMAC,
	(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n,
	 unsigned char *md, unsigned int *md_len),
	(evp_md, key, key_len, d, n, md, md_len))
LAZY_FN(LAZY_CRYPTO, int, CRYPTO_memcmp, (const void *a, const void *b, size_t len), (a, b, len))
LAZY_VOID_FN(LAZY_CRYPTO, OPENSSL_cleanse, (void *ptr, size_t len), (ptr, len))
