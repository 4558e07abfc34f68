/* Private to agent/: the edge CA, which issues the certificates modules
 * trust: the gateway's server certificate (the hub's TLS on 8883 and 443)
 * and those modules ask for through the workload API.
 *
 * Either the operator's (config edge_ca {"cert", "key"}: the production
 * path, as IoT Edge's [edge_ca] cert and key files; the cert file may hold
 * the chain above it) or berth's own quickstart CA in <root>/ca/: an EC
 * P-256 key and a self-signed certificate valid 90 days, made again once 80%
 * of its life has passed, as IoT Edge renews its quickstart CA. libcrypto is
 * loaded only when a certificate is made or read. */
#ifndef BERTH_AGENT_EDGECA_H
#define BERTH_AGENT_EDGECA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define EDGECA_LIFETIME_SECS	    (90LL * 24 * 3600)
#define EDGECA_CERT_FILE	    "edge-ca.pem"
#define EDGECA_KEY_FILE		    "edge-ca.key"
#define EDGECA_PEM_MAX		    (64 * 1024)
#define EDGECA_CN_MAX		    64 /* X.509's upper bound for a common name */
#define EDGECA_SERVER_LIFETIME_SECS EDGECA_LIFETIME_SECS

struct edgeca {
	char *chain_pem; /* the CA's certificate and what the cert file holds above it */
	void *cert;	 /* X509 * */
	void *key;	 /* EVP_PKEY * */
	int64_t not_before, not_after;
	bool quickstart;
};

/* True once 80% of a certificate's life has passed. */
bool edgeca_renewal_due(int64_t not_before, int64_t not_after, int64_t now);
/* When that is (Unix seconds). */
int64_t edgeca_renewal_time(int64_t not_before, int64_t not_after);

/* Makes a quickstart CA for device_id in dir (edge-ca.pem, edge-ca.key,
 * 0600), replacing one that is there. */
NODISCARD int edgeca_create(const char *dir, const char *device_id, int64_t now, struct berr *err);

/* Loads a CA from its certificate (chain) and key files: the key must match
 * the first certificate, which must be a CA. */
NODISCARD int edgeca_load(const char *cert_file, const char *key_file, struct edgeca **out,
			  struct berr *err);
void edgeca_free(struct edgeca *ca);

/* Validity of the first certificate in a PEM text (libcrypto). */
NODISCARD int edgeca_pem_validity(const char *pem, size_t len, int64_t *not_before,
				  int64_t *not_after, struct berr *err);

/* Issues a server certificate for cn with these subject alternative names
 * (each a DNS name or an IP address), valid from now until not_after (or
 * the CA's own end, whichever is sooner): *cert_pem gets the certificate
 * followed by the CA's chain, *key_pem a new EC P-256 key (PKCS #8). */
NODISCARD int edgeca_issue_server(const struct edgeca *ca, const char *cn, const char *const *sans,
				  size_t n_sans, int64_t now, int64_t not_after, char **cert_pem,
				  char **key_pem, int64_t *issued_not_after, struct berr *err);

#endif
