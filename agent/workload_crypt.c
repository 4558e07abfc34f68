/* The workload API's encrypt and decrypt: authenticated encryption with a
 * key of each module's own, as IoT Edge's (whose keyd derives it from a
 * master encryption key and the module's id and generation).
 *
 * berth's device secret is 32 random bytes in <root>/ca/workload.key (0600),
 * made on first use and kept across device key changes. A module's key is
 * HMAC-SHA256(secret, "berth workload encryption\n" module "\n" generation),
 * so a module deployed anew cannot read what its earlier self encrypted, as
 * under IoT Edge. Each encryption takes 16 random bytes (salt) and uses
 * AES-256-GCM with the key HMAC-SHA256(module key, salt), the nonce the
 * first 12 bytes of SHA-256(initializationVector), and the version and salt
 * as associated data; the ciphertext is
 *     0x01 | salt (16) | tag (16) | AES-GCM output
 * so a caller that sends the same initialization vector every time (a
 * common habit with this API) never reuses a key and nonce pair. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/random.h>

#include "agent/workload.h"
#include "common/fs.h"
#include "common/lazy.h"
#include "common/sha256.h"

#define CRYPT_VERSION 1
#define SALT_LEN      16
#define TAG_LEN	      16
#define NONCE_LEN     12
#define HEAD_LEN      (1 + SALT_LEN + TAG_LEN)

static int random_bytes(unsigned char *out, size_t len, struct berr *err)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom(out + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berr_set(err, errno, "getrandom");
		got += (size_t)n;
	}
	return 0;
}

int workload_secret(const char *dir, unsigned char out[WORKLOAD_SECRET_LEN], struct berr *err)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/" WORKLOAD_SECRET_FILE, dir);
	char *data = NULL;
	size_t len = 0;
	struct berr e;
	if (fs_read_file(path, 64, &data, &len, &e) == 0) {
		bool ok = len == WORKLOAD_SECRET_LEN;
		if (ok)
			memcpy(out, data, len);
		explicit_bzero(data, len);
		free(data);
		if (!ok)
			return berr_set(err, 0, "%s: expected %d bytes, found %zu", path,
					WORKLOAD_SECRET_LEN, len);
		return 0;
	}
	if (e.code != ENOENT) {
		*err = e;
		return -1;
	}
	if (fs_mkdir_p(dir, 0700, err) < 0 || random_bytes(out, WORKLOAD_SECRET_LEN, err) < 0)
		return -1;
	return fs_write_file_atomic(path, out, WORKLOAD_SECRET_LEN, 0600, err);
}

static void message_key(const unsigned char secret[WORKLOAD_SECRET_LEN], const char *module,
			const char *genid, const unsigned char salt[SALT_LEN],
			unsigned char key[SHA256_LEN])
{
	char label[256];
	int n = snprintf(label, sizeof(label), "berth workload encryption\n%s\n%s", module, genid);
	unsigned char mkey[SHA256_LEN];
	hmac_sha256(secret, WORKLOAD_SECRET_LEN, label, (size_t)n, mkey);
	hmac_sha256(mkey, sizeof(mkey), salt, SALT_LEN, key);
	explicit_bzero(mkey, sizeof(mkey));
}

static void nonce_of(const unsigned char *iv, size_t iv_len, unsigned char nonce[NONCE_LEN])
{
	struct sha256 s;
	unsigned char h[SHA256_LEN];
	sha256_init(&s);
	sha256_update(&s, iv, iv_len);
	sha256_final(&s, h);
	memcpy(nonce, h, NONCE_LEN);
}

/* AES-256-GCM over in (encrypting or decrypting) with the header as
 * associated data; the tag is written (encrypt) or checked (decrypt). */
static int gcm(bool enc, const unsigned char key[32], const unsigned char nonce[NONCE_LEN],
	       const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
	       unsigned char *out, unsigned char tag[TAG_LEN], struct berr *err)
{
	if (lazy_require(LAZY_CRYPTO, err) < 0)
		return -1;
	EVP_CIPHER_CTX *c = LAZY(EVP_CIPHER_CTX_new)();
	int n = 0, fin = 0, e = enc ? 1 : 0;
	/* The tag is checked at the end of a decryption, read after an
	 * encryption's. */
	bool ok = c &&
		  LAZY(EVP_CipherInit_ex)(c, LAZY(EVP_aes_256_gcm)(), NULL, NULL, NULL, e) == 1 &&
		  LAZY(EVP_CIPHER_CTX_ctrl)(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
		  LAZY(EVP_CipherInit_ex)(c, NULL, NULL, key, nonce, e) == 1 &&
		  LAZY(EVP_CipherUpdate)(c, NULL, &n, aad, (int)aad_len) == 1 &&
		  LAZY(EVP_CipherUpdate)(c, out, &n, in, (int)len) == 1 &&
		  (enc || LAZY(EVP_CIPHER_CTX_ctrl)(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
		  LAZY(EVP_CipherFinal_ex)(c, out + n, &fin) == 1 &&
		  (!enc || LAZY(EVP_CIPHER_CTX_ctrl)(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
	if (c)
		LAZY(EVP_CIPHER_CTX_free)(c);
	LAZY(ERR_clear_error)();
	if (!ok)
		return enc ? berr_set(err, 0, "encryption failed")
			   : berr_set(err, 0,
				      "the ciphertext does not decrypt with this module's key and "
				      "initialization vector");
	return 0;
}

int workload_encrypt(const unsigned char secret[WORKLOAD_SECRET_LEN], const char *module,
		     const char *genid, const struct workload_crypt_request *req,
		     unsigned char *out, size_t cap, size_t *out_len, struct berr *err)
{
	if (cap < HEAD_LEN + req->len)
		return berr_set(err, 0, "encryption buffer too small");
	out[0] = CRYPT_VERSION;
	if (random_bytes(out + 1, SALT_LEN, err) < 0)
		return -1;
	unsigned char key[SHA256_LEN], nonce[NONCE_LEN];
	message_key(secret, module, genid, out + 1, key);
	nonce_of(req->iv, req->iv_len, nonce);
	int rc = gcm(true, key, nonce, out, 1 + SALT_LEN, req->data, req->len, out + HEAD_LEN,
		     out + 1 + SALT_LEN, err);
	explicit_bzero(key, sizeof(key));
	if (rc < 0)
		return -1;
	*out_len = HEAD_LEN + req->len;
	return 0;
}

int workload_decrypt(const unsigned char secret[WORKLOAD_SECRET_LEN], const char *module,
		     const char *genid, const struct workload_crypt_request *req,
		     unsigned char *out, size_t cap, size_t *out_len, struct berr *err)
{
	if (req->len < HEAD_LEN || req->data[0] != CRYPT_VERSION)
		return berr_set(err, 0, "the ciphertext was not made by berth's encrypt");
	size_t n = req->len - HEAD_LEN;
	if (cap < n)
		return berr_set(err, 0, "decryption buffer too small");
	unsigned char key[SHA256_LEN], nonce[NONCE_LEN], tag[TAG_LEN];
	message_key(secret, module, genid, req->data + 1, key);
	nonce_of(req->iv, req->iv_len, nonce);
	memcpy(tag, req->data + 1 + SALT_LEN, TAG_LEN);
	int rc =
	    gcm(false, key, nonce, req->data, 1 + SALT_LEN, req->data + HEAD_LEN, n, out, tag, err);
	explicit_bzero(key, sizeof(key));
	if (rc < 0) {
		explicit_bzero(out, n);
		return -1;
	}
	*out_len = n;
	return 0;
}
