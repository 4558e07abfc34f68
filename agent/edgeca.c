/* The edge CA with libcrypto (loaded on first use): making the quickstart
 * CA, loading a CA, issuing server certificates. */
#include "agent/edgeca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/lazy.h"

#define CLOCK_SKEW_SECS 300 /* certificates start a little before now */

bool edgeca_renewal_due(int64_t not_before, int64_t not_after, int64_t now)
{
	return now >= edgeca_renewal_time(not_before, not_after);
}

int64_t edgeca_renewal_time(int64_t not_before, int64_t not_after)
{
	return not_before + (not_after - not_before) / 5 * 4;
}

static int crypto_failure(struct berr *err, const char *what)
{
	unsigned long e = LAZY(ERR_get_error)();
	char buf[256] = "unknown error";
	if (e)
		LAZY(ERR_error_string_n)(e, buf, sizeof(buf));
	LAZY(ERR_clear_error)();
	return berr_set(err, 0, "%s: %s", what, buf);
}

static void bio_freep(BIO **b)
{
	if (*b)
		LAZY(BIO_free)(*b);
}
static void x509_freep(X509 **x)
{
	if (*x)
		LAZY(X509_free)(*x);
}
static void pkey_freep(EVP_PKEY **k)
{
	if (*k)
		LAZY(EVP_PKEY_free)(*k);
}
#define cleanup_bio  __attribute__((cleanup(bio_freep)))
#define cleanup_x509 __attribute__((cleanup(x509_freep)))
#define cleanup_pkey __attribute__((cleanup(pkey_freep)))

static int asn1_time_get(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	if (!t || LAZY(ASN1_TIME_to_tm)(t, &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int validity(X509 *x, int64_t *not_before, int64_t *not_after)
{
	if (asn1_time_get(LAZY(X509_get0_notBefore)(x), not_before) < 0 ||
	    asn1_time_get(LAZY(X509_get0_notAfter)(x), not_after) < 0)
		return -1;
	return 0;
}

/* The text a memory BIO holds, as a malloc'd string. */
static char *bio_text(BIO *b)
{
	char *data = NULL;
	long n = LAZY(BIO_ctrl)(b, BIO_CTRL_INFO, 0, (char *)&data);
	if (n < 0 || !data)
		return NULL;
	char *out = malloc((size_t)n + 1);
	if (out) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
	}
	return out;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct berr *err)
{
	X509V3_CTX ctx;
	LAZY(X509V3_set_ctx)(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = LAZY(X509V3_EXT_conf_nid)(NULL, &ctx, nid, value);
	if (!ext)
		return crypto_failure(err, value);
	int ok = LAZY(X509_add_ext)(x, ext, -1);
	LAZY(X509_EXTENSION_free)(ext);
	return ok == 1 ? 0 : crypto_failure(err, value);
}

/* A certificate with a random 127-bit serial, the subject CN, the given
 * validity and public key; the caller adds extensions and signs. */
static X509 *cert_new(const char *cn, EVP_PKEY *key, int64_t not_before, int64_t not_after,
		      struct berr *err)
{
	X509 *x = LAZY(X509_new)();
	BIGNUM *serial = LAZY(BN_new)();
	bool ok =
	    x && serial && LAZY(X509_set_version)(x, 2) == 1 &&
	    LAZY(BN_rand)(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
	    LAZY(BN_to_ASN1_INTEGER)(serial, LAZY(X509_get_serialNumber)(x)) &&
	    LAZY(ASN1_TIME_set)(LAZY(X509_getm_notBefore)(x), (time_t)not_before) &&
	    LAZY(ASN1_TIME_set)(LAZY(X509_getm_notAfter)(x), (time_t)not_after) &&
	    LAZY(X509_NAME_add_entry_by_txt)(LAZY(X509_get_subject_name)(x), "CN", MBSTRING_UTF8,
					     (const unsigned char *)cn, -1, -1, 0) == 1 &&
	    LAZY(X509_set_pubkey)(x, key) == 1;
	if (serial)
		LAZY(BN_free)(serial);
	if (!ok) {
		crypto_failure(err, "certificate");
		if (x)
			LAZY(X509_free)(x);
		return NULL;
	}
	return x;
}

static EVP_PKEY *ec_key_new(struct berr *err)
{
	EVP_PKEY *k = LAZY(EVP_PKEY_Q_keygen)(NULL, NULL, "EC", "P-256");
	if (!k)
		crypto_failure(err, "EC P-256 key");
	return k;
}

static int pem_of_cert(X509 *x, char **out, struct berr *err)
{
	cleanup_bio BIO *b = LAZY(BIO_new)(LAZY(BIO_s_mem)());
	if (!b || LAZY(PEM_write_bio_X509)(b, x) != 1 || !(*out = bio_text(b)))
		return crypto_failure(err, "certificate PEM");
	return 0;
}

static int pem_of_key(EVP_PKEY *k, char **out, struct berr *err)
{
	cleanup_bio BIO *b = LAZY(BIO_new)(LAZY(BIO_s_mem)());
	if (!b || LAZY(PEM_write_bio_PrivateKey)(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    !(*out = bio_text(b)))
		return crypto_failure(err, "private key PEM");
	return 0;
}

int edgeca_create(const char *dir, const char *device_id, int64_t now, struct berr *err)
{
	if (lazy_require(LAZY_CRYPTO, err) < 0)
		return -1;
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	cleanup_pkey EVP_PKEY *key = ec_key_new(err);
	if (!key)
		return -1;
	/* As IoT Edge names its own ("aziot-edge CA <device>"); a CA's name must
	 * differ from the host names it issues certificates for. */
	char cn[65];
	snprintf(cn, sizeof(cn), "berth edge CA %s", device_id);
	cleanup_x509 X509 *x =
	    cert_new(cn, key, now - CLOCK_SKEW_SECS, now + EDGECA_LIFETIME_SECS, err);
	if (!x)
		return -1;
	if (LAZY(X509_set_issuer_name)(x, LAZY(X509_get_subject_name)(x)) != 1)
		return crypto_failure(err, "edge CA issuer");
	if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err) < 0 ||
	    add_ext(x, x, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign", err) <
		0 ||
	    add_ext(x, x, NID_subject_key_identifier, "hash", err) < 0)
		return berr_wrap(err, "edge CA");
	if (LAZY(X509_sign)(x, key, LAZY(EVP_sha256)()) <= 0)
		return crypto_failure(err, "signing the edge CA");
	cleanup_free char *cert_pem = NULL, *key_pem = NULL;
	if (pem_of_cert(x, &cert_pem, err) < 0 || pem_of_key(key, &key_pem, err) < 0)
		return -1;
	char path[4300];
	/* The key first: a certificate without its key would be unusable. */
	snprintf(path, sizeof(path), "%s/" EDGECA_KEY_FILE, dir);
	int rc = fs_write_file_atomic(path, key_pem, strlen(key_pem), 0600, err);
	explicit_bzero(key_pem, strlen(key_pem));
	if (rc < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/" EDGECA_CERT_FILE, dir);
	return fs_write_file_atomic(path, cert_pem, strlen(cert_pem), 0644, err);
}

void edgeca_free(struct edgeca *ca)
{
	if (!ca)
		return;
	if (ca->cert)
		LAZY(X509_free)(ca->cert);
	if (ca->key)
		LAZY(EVP_PKEY_free)(ca->key);
	free(ca->chain_pem);
	free(ca);
}

int edgeca_pem_validity(const char *pem, size_t len, int64_t *not_before, int64_t *not_after,
			struct berr *err)
{
	if (lazy_require(LAZY_CRYPTO, err) < 0)
		return -1;
	cleanup_bio BIO *b = LAZY(BIO_new_mem_buf)(pem, (int)len);
	cleanup_x509 X509 *x = b ? LAZY(PEM_read_bio_X509)(b, NULL, NULL, NULL) : NULL;
	if (!x)
		return crypto_failure(err, "no PEM certificate");
	if (validity(x, not_before, not_after) < 0)
		return berr_set(err, 0, "the certificate's validity cannot be read");
	return 0;
}

int edgeca_load(const char *cert_file, const char *key_file, struct edgeca **out, struct berr *err)
{
	*out = NULL;
	if (lazy_require(LAZY_CRYPTO, err) < 0)
		return -1;
	cleanup_free char *pem = NULL, *key_pem = NULL;
	size_t len = 0, klen = 0;
	if (fs_read_file(cert_file, EDGECA_PEM_MAX, &pem, &len, err) < 0 ||
	    fs_read_file(key_file, EDGECA_PEM_MAX, &key_pem, &klen, err) < 0)
		return -1;
	cleanup_bio BIO *cb = LAZY(BIO_new_mem_buf)(pem, (int)len);
	cleanup_x509 X509 *x = cb ? LAZY(PEM_read_bio_X509)(cb, NULL, NULL, NULL) : NULL;
	if (!x)
		return crypto_failure(err, cert_file);
	cleanup_bio BIO *kb = LAZY(BIO_new_mem_buf)(key_pem, (int)klen);
	/* No passphrase callback: an encrypted key is refused, not asked for. */
	cleanup_pkey EVP_PKEY *k =
	    kb ? LAZY(PEM_read_bio_PrivateKey)(kb, NULL, NULL, (void *)"") : NULL;
	explicit_bzero(key_pem, klen);
	if (!k)
		return crypto_failure(err, key_file);
	if (LAZY(X509_check_private_key)(x, k) != 1) {
		LAZY(ERR_clear_error)();
		return berr_set(err, 0, "%s does not match the certificate in %s", key_file,
				cert_file);
	}
	if (LAZY(X509_check_ca)(x) < 1)
		return berr_set(err, 0, "%s is not a CA certificate (basicConstraints CA:TRUE)",
				cert_file);
	struct edgeca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return berr_set(err, ENOMEM, "edge CA");
	if (validity(x, &ca->not_before, &ca->not_after) < 0) {
		free(ca);
		return berr_set(err, 0, "%s: the validity cannot be read", cert_file);
	}
	ca->chain_pem = take_ptr(pem);
	ca->cert = take_ptr(x);
	ca->key = take_ptr(k);
	*out = ca;
	return 0;
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int edgeca_issue_server(const struct edgeca *ca, const char *cn, const char *const *sans,
			size_t n_sans, int64_t now, int64_t not_after, char **cert_pem,
			char **key_pem, int64_t *issued_not_after, struct berr *err)
{
	*cert_pem = *key_pem = NULL;
	if (not_after > ca->not_after)
		not_after = ca->not_after;
	if (not_after <= now)
		return berr_set(err, 0, "the edge CA has expired: it cannot issue certificates");
	char san[1024] = "";
	size_t off = 0;
	for (size_t i = 0; i < n_sans; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			dup |= !strcasecmp(sans[i], sans[j]);
		if (dup)
			continue;
		int n = snprintf(san + off, sizeof(san) - off, "%s%s:%s", off ? "," : "",
				 is_ip(sans[i]) ? "IP" : "DNS", sans[i]);
		if (n < 0 || (size_t)n >= sizeof(san) - off)
			return berr_set(err, 0, "too many subject alternative names");
		off += (size_t)n;
	}
	cleanup_pkey EVP_PKEY *key = ec_key_new(err);
	if (!key)
		return -1;
	int64_t nb =
	    now - CLOCK_SKEW_SECS < ca->not_before ? ca->not_before : now - CLOCK_SKEW_SECS;
	cleanup_x509 X509 *x = cert_new(cn, key, nb, not_after, err);
	if (!x)
		return -1;
	if (LAZY(X509_set_issuer_name)(x, LAZY(X509_get_subject_name)(ca->cert)) != 1)
		return crypto_failure(err, "issuer");
	if (add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE", err) < 0 ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature", err) < 0 ||
	    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth", err) < 0 ||
	    add_ext(x, ca->cert, NID_subject_key_identifier, "hash", err) < 0 ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid", err) < 0 ||
	    (off && add_ext(x, ca->cert, NID_subject_alt_name, san, err) < 0))
		return berr_wrap(err, "certificate for %s", cn);
	if (LAZY(X509_sign)(x, ca->key, LAZY(EVP_sha256)()) <= 0)
		return crypto_failure(err, "signing the certificate");
	cleanup_free char *leaf = NULL, *kp = NULL;
	if (pem_of_cert(x, &leaf, err) < 0 || pem_of_key(key, &kp, err) < 0)
		return -1;
	/* The full chain, so a client that trusts the root alone can verify. */
	size_t ll = strlen(leaf), cl = strlen(ca->chain_pem);
	char *chain = malloc(ll + cl + 2);
	if (!chain) {
		explicit_bzero(kp, strlen(kp));
		return berr_set(err, ENOMEM, "certificate");
	}
	memcpy(chain, leaf, ll);
	size_t o = ll;
	if (o && chain[o - 1] != '\n')
		chain[o++] = '\n';
	memcpy(chain + o, ca->chain_pem, cl + 1);
	*cert_pem = chain;
	*key_pem = take_ptr(kp);
	*issued_not_after = not_after;
	return 0;
}
