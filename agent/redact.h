/* Private to agent/: what `berth support-bundle` takes out of the files it
 * gathers. A config or a deployment is rewritten with every string under a
 * key that names a secret (key, password, token, secret, SAS, signature,
 * connection string, credential: in any case, anywhere in the key's name)
 * replaced by REDACTED, and so is every string holding a connection string
 * or a SAS token; inside createOptions (a JSON string) the same goes for Env
 * entries whose names say secret. Each value taken out is remembered, so
 * that every other file of the bundle (logs, check, list) is scrubbed of it
 * too, with its URL-encoded form, and of SAS signatures and shared access
 * keys whatever their origin. */
#ifndef BERTH_AGENT_REDACT_H
#define BERTH_AGENT_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/strbuf.h"

#define REDACTED	   "<redacted>"
#define REDACT_SECRETS_MAX 256
#define REDACT_MIN_LEN	   4 /* shorter values are redacted in JSON, not scrubbed elsewhere */

struct redact_secrets {
	char *v[REDACT_SECRETS_MAX];
	size_t n;
	bool overflow; /* more secrets than kept: the caller must say so */
};

void redact_secrets_free(struct redact_secrets *s);
/* True when a key's name says its value is secret. */
bool redact_key_is_secret(const char *key, size_t len);
/* Rewrites the JSON document in buf (pretty) into out, remembering the
 * values it took out. -1 with err when it is no JSON. */
NODISCARD int redact_json(const char *buf, size_t len, const char *what, struct redact_secrets *s,
			  struct strbuf *out, struct berr *err);
/* Copies text into out with every remembered secret, SAS signature and
 * shared access key replaced. -1 when out of memory. */
NODISCARD int redact_text(const char *text, size_t len, const struct redact_secrets *s,
			  struct strbuf *out);

#endif
