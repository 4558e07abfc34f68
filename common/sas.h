/* Module identities and SAS tokens, as IoT Hub defines them:
 *   SharedAccessSignature sr=<urlenc(resource)>&sig=<urlenc(b64(HMAC-SHA256(key, sr "\n"
 * se)))>&se=<expiry> with resource "<hub>/devices/<device>/modules/<module>". A module key is
 * derived from the device key and the module's generation id, so a module
 * removed and deployed again gets a new key and its old tokens stop working. */
#ifndef BERTH_SAS_H
#define BERTH_SAS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SAS_KEY_B64_MAX	 128  /* base64 keys are 44 characters for 32 bytes */
#define SAS_TOKEN_MAX	 1024 /* longer tokens are refused unparsed */
#define SAS_RESOURCE_MAX 512

/* module key = base64(HMAC-SHA256(base64dec(device_key), module "\n" generation_id)) */
NODISCARD int sas_derive_module_key(const char *device_key_b64, const char *module_id,
				    const char *generation_id, char out[SAS_KEY_B64_MAX],
				    struct berr *err);

/* Resource string "<hub>/devices/<device>[/modules/<module>]" (module may be NULL). */
int sas_resource(const char *hub, const char *device, const char *module, char *out, size_t cap);

/* Makes a token for resource valid until the Unix time `expiry`. */
NODISCARD int sas_token_make(const char *key_b64, const char *resource, int64_t expiry, char *out,
			     size_t cap, struct berr *err);

/* Checks a token: well formed, for exactly `resource` (hostname compared
 * without case), signed with key_b64, not expired at `now`. The error says
 * which part failed, never the expected signature. */
NODISCARD int sas_token_verify(const char *token, const char *key_b64, const char *resource,
			       int64_t now, struct berr *err);

#endif
