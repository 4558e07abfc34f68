/* Private to agent/: IoT Edge's workload API, which module SDKs call to sign
 * their own tokens, to trust the gateway and to get server certificates.
 * Every module has a socket of its own (workload_server.c); the parser and
 * the request bodies' checks here are pure, so they can be tested and
 * fuzzed alone.
 *   GET  /trust-bundle?api-version=V                      200 {"certificate": PEM}
 *   GET  /manifest-trust-bundle?api-version=V             200 {"certificate": PEM}
 *   POST /modules/<m>/genid/<g>/sign?api-version=V        200 {"digest": base64}
 *        {"keyId":"primary","algo":"HMACSHA256","data":base64}
 *   POST /modules/<m>/genid/<g>/certificate/server?...    201 {"privateKey":{"type":"key",
 *        {"commonName":CN,"expiration":RFC3339}               "bytes":PEM},"certificate":PEM,
 *                                                             "expiration":RFC3339}
 *   POST /modules/<m>/genid/<g>/encrypt?...               200 {"ciphertext": base64}
 *        {"plaintext":base64,"initializationVector":base64}
 *   POST /modules/<m>/genid/<g>/decrypt?...               200 {"plaintext": base64}
 *        {"ciphertext":base64,"initializationVector":base64}
 * api-version: any of IoT Edge's, 2018-06-28 to 2022-08-03. */
#ifndef BERTH_AGENT_WORKLOAD_H
#define BERTH_AGENT_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/deployment.h"
#include "common/err.h"

#define WORKLOAD_HEADER_MAX  8192
#define WORKLOAD_BODY_MAX    65536
#define WORKLOAD_API_VERSION "2019-01-30" /* IOTEDGE_APIVERSION */
/* Inside every instance, as IoT Edge mounts it: a directory of the module's
 * own holds its socket (a restarted daemon's new socket is then the one the
 * module finds). */
#define WORKLOAD_MODULE_DIR "/var/run/iotedge"
#define WORKLOAD_SOCKET	    "workload.sock"
#define WORKLOAD_CN_MAX	    64	  /* X.509's upper bound for a common name */
#define WORKLOAD_DATA_MAX   16384 /* bytes to encrypt or decrypt */
#define WORKLOAD_IV_MAX	    256

enum workload_op {
	WORKLOAD_TRUST_BUNDLE,
	WORKLOAD_MANIFEST_TRUST_BUNDLE,
	WORKLOAD_SIGN,
	WORKLOAD_SERVER_CERT,
	WORKLOAD_ENCRYPT,
	WORKLOAD_DECRYPT,
};

struct workload_request {
	enum workload_op op;
	char module[MODULE_NAME_MAX + 1]; /* "" for the trust bundles */
	char genid[64];
	const char *body; /* points into the buffer given to the parser */
	size_t body_len;
};

/* Parses one HTTP/1.x request from buf. Returns 1 when complete, 0 when more
 * bytes are needed, -1 with err (and *status the HTTP status to answer) when
 * it is malformed, too large or not a workload call berth serves. */
NODISCARD int workload_parse_request(const char *buf, size_t len, struct workload_request *req,
				     int *status, struct berr *err);

/* Checks the JSON body and writes the base64 HMAC-SHA256 of its data, keyed
 * with the base64 module key, into digest. */
NODISCARD int workload_sign(const char *body, size_t body_len, const char *module_key_b64,
			    char *digest, size_t cap, int *status, struct berr *err);

struct workload_cert_request {
	char common_name[WORKLOAD_CN_MAX + 1];
	int64_t expiration; /* Unix seconds; 0 when the request gave none */
};

/* {"commonName": CN, "expiration": RFC 3339}: a name a certificate can
 * carry, an expiration after now. */
NODISCARD int workload_cert_request_parse(const char *body, size_t len, int64_t now,
					  struct workload_cert_request *out, int *status,
					  struct berr *err);

struct workload_crypt_request {
	unsigned char data[WORKLOAD_DATA_MAX + 64]; /* plaintext, or ciphertext as berth wrote it */
	size_t len;
	unsigned char iv[WORKLOAD_IV_MAX];
	size_t iv_len;
};

/* {"plaintext"|"ciphertext": base64, "initializationVector": base64}. */
NODISCARD int workload_crypt_request_parse(const char *body, size_t len, bool decrypt,
					   struct workload_crypt_request *out, int *status,
					   struct berr *err);

/* workload_crypt.c: the device secret the modules' encryption keys come
 * from (<dir>/workload.key, made on first use), and encrypt / decrypt for
 * one module. out takes at most WORKLOAD_CRYPT_OVERHEAD bytes more than the
 * plaintext. A ciphertext that does not verify is an error (400). */
#define WORKLOAD_SECRET_LEN	32
#define WORKLOAD_SECRET_FILE	"workload.key"
#define WORKLOAD_CRYPT_OVERHEAD 33
NODISCARD int workload_secret(const char *dir, unsigned char out[WORKLOAD_SECRET_LEN],
			      struct berr *err);
NODISCARD int workload_encrypt(const unsigned char secret[WORKLOAD_SECRET_LEN], const char *module,
			       const char *genid, const struct workload_crypt_request *req,
			       unsigned char *out, size_t cap, size_t *out_len, struct berr *err);
NODISCARD int workload_decrypt(const unsigned char secret[WORKLOAD_SECRET_LEN], const char *module,
			       const char *genid, const struct workload_crypt_request *req,
			       unsigned char *out, size_t cap, size_t *out_len, struct berr *err);

/* "2024-05-01T12:00:00Z", with optional fractions and a +hh:mm offset. */
NODISCARD int rfc3339_parse(const char *s, int64_t *out);
void rfc3339_format(int64_t secs, char out[32]);

#endif
