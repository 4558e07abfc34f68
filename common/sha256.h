/* A small SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) for the processes
 * that stay up: the daemon and the hub make and check SAS tokens, and
 * loading libcrypto for that alone costs each about 0.4 MB of private memory.
 * Bulk hashing (image pulls) uses libcrypto's faster code in digest.c. */
#ifndef BERTH_SHA256_H
#define BERTH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t total;
	unsigned char block[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		 unsigned char out[SHA256_LEN]);

/* Compares without an early exit, so timing does not tell where a guess
 * went wrong. */
int memcmp_constant_time(const void *a, const void *b, size_t len);

#endif
