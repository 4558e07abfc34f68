/* Base64 and percent-encoding, bounded and strict on input. */
#ifndef BERTH_ENCODING_H
#define BERTH_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

/* Standard base64 with padding. Output is NUL-terminated; out_cap must be at
 * least base64_encoded_len(len) + 1. Returns the length written, or -1. */
size_t base64_encoded_len(size_t len);
int base64_encode(const void *data, size_t len, char *out, size_t out_cap);
/* Decodes standard base64 (padding optional, no whitespace). Returns the
 * decoded length, or -1 on invalid input or when out_cap is too small. */
int base64_decode(const char *in, size_t in_len, unsigned char *out, size_t out_cap);

/* Percent-encodes everything but unreserved characters (RFC 3986:
 * ALPHA DIGIT - . _ ~). Returns the length, or -1 if out_cap is too small. */
int url_encode(const char *in, size_t in_len, char *out, size_t out_cap);
/* Decodes %XX escapes (and '+' as space when plus_is_space). Rejects bad
 * escapes and encoded NUL. Returns the length, or -1. */
int url_decode(const char *in, size_t in_len, char *out, size_t out_cap, bool plus_is_space);

#endif
