#include "common/sas.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/encoding.h"
#include "common/sha256.h"

static int hmac_b64(const char *key_b64, const void *msg, size_t msg_len, char *out, size_t cap,
		    struct berr *err)
{
	unsigned char key[128];
	int klen = base64_decode(key_b64, strlen(key_b64), key, sizeof(key));
	if (klen <= 0)
		return berr_set(err, 0, "key is not valid base64");
	unsigned char mac[SHA256_LEN];
	hmac_sha256(key, (size_t)klen, msg, msg_len, mac);
	explicit_bzero(key, sizeof(key));
	if (base64_encode(mac, sizeof(mac), out, cap) < 0)
		return berr_set(err, ENOSPC, "signature buffer");
	return 0;
}

int sas_derive_module_key(const char *device_key_b64, const char *module_id,
			  const char *generation_id, char out[SAS_KEY_B64_MAX], struct berr *err)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s\n%s", module_id, generation_id);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return berr_set(err, ENAMETOOLONG, "module key for %s", module_id);
	if (hmac_b64(device_key_b64, msg, (size_t)n, out, SAS_KEY_B64_MAX, err) < 0)
		return berr_wrap(err, "device key");
	return 0;
}

int sas_resource(const char *hub, const char *device, const char *module, char *out, size_t cap)
{
	int n = module ? snprintf(out, cap, "%s/devices/%s/modules/%s", hub, device, module)
		       : snprintf(out, cap, "%s/devices/%s", hub, device);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int sas_token_make(const char *key_b64, const char *resource, int64_t expiry, char *out,
		   size_t cap, struct berr *err)
{
	char sr[SAS_RESOURCE_MAX * 3];
	if (url_encode(resource, strlen(resource), sr, sizeof(sr)) < 0)
		return berr_set(err, ENAMETOOLONG, "resource %s", resource);
	char msg[sizeof(sr) + 32];
	int n = snprintf(msg, sizeof(msg), "%s\n%" PRId64, sr, expiry);
	char sig[128], sig_enc[256];
	if (hmac_b64(key_b64, msg, (size_t)n, sig, sizeof(sig), err) < 0)
		return -1;
	url_encode(sig, strlen(sig), sig_enc, sizeof(sig_enc));
	n = snprintf(out, cap, "SharedAccessSignature sr=%s&sig=%s&se=%" PRId64, sr, sig_enc, expiry);
	if (n < 0 || (size_t)n >= cap)
		return berr_set(err, ENOSPC, "token for %s", resource);
	return 0;
}

/* Host names compare without case; the path part exactly. */
static bool resource_equal(const char *a, const char *b)
{
	const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
	if (!sa || !sb || sa - a != sb - b)
		return false;
	return strncasecmp(a, b, (size_t)(sa - a)) == 0 && strcmp(sa, sb) == 0;
}

int sas_token_verify(const char *token, const char *key_b64, const char *resource, int64_t now,
		     struct berr *err)
{
	static const char prefix[] = "SharedAccessSignature ";
	size_t tlen = strnlen(token, SAS_TOKEN_MAX + 1);
	if (tlen > SAS_TOKEN_MAX)
		return berr_set(err, 0, "token longer than %d bytes", SAS_TOKEN_MAX);
	if (strncmp(token, prefix, sizeof(prefix) - 1))
		return berr_set(err, 0, "token does not start with \"SharedAccessSignature \"");
	const char *p = token + sizeof(prefix) - 1;
	const char *sr = NULL, *sig = NULL, *se = NULL;
	size_t sr_len = 0, sig_len = 0, se_len = 0;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > 3 && !strncmp(p, "sr=", 3) && !sr) {
			sr = p + 3;
			sr_len = len - 3;
		} else if (len > 4 && !strncmp(p, "sig=", 4) && !sig) {
			sig = p + 4;
			sig_len = len - 4;
		} else if (len > 3 && !strncmp(p, "se=", 3) && !se) {
			se = p + 3;
			se_len = len - 3;
		} else if (!(len > 4 && !strncmp(p, "skn=", 4))) {
			return berr_set(err, 0, "token has an unknown or repeated field");
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (!sr || !sig || !se)
		return berr_set(err, 0, "token lacks sr, sig or se");
	char se_buf[24];
	if (se_len >= sizeof(se_buf))
		return berr_set(err, 0, "token expiry is not a number");
	memcpy(se_buf, se, se_len);
	se_buf[se_len] = '\0';
	char *end;
	errno = 0;
	long long expiry = strtoll(se_buf, &end, 10);
	if (errno || *end || end == se_buf || expiry < 0)
		return berr_set(err, 0, "token expiry is not a number");
	char sr_dec[SAS_RESOURCE_MAX];
	if (url_decode(sr, sr_len, sr_dec, sizeof(sr_dec), false) < 0)
		return berr_set(err, 0, "token resource is not valid");
	if (!resource_equal(sr_dec, resource))
		return berr_set(err, 0, "token is for %s, not %s", sr_dec, resource);
	if (expiry <= now)
		return berr_set(err, 0, "token expired at %lld", expiry);
	char msg[SAS_TOKEN_MAX + 32];
	int n = snprintf(msg, sizeof(msg), "%.*s\n%s", (int)sr_len, sr, se_buf);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return berr_set(err, 0, "token too long");
	char want[128];
	if (hmac_b64(key_b64, msg, (size_t)n, want, sizeof(want), err) < 0)
		return -1;
	char got[128];
	int glen = url_decode(sig, sig_len, got, sizeof(got), false);
	size_t wlen = strlen(want);
	if (glen < 0 || (size_t)glen != wlen || memcmp_constant_time(got, want, wlen) != 0)
		return berr_set(err, 0, "token signature does not match");
	return 0;
}
