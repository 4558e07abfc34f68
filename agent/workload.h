/* Private to agent/: the part of IoT Edge's workload API that module SDKs use to sign their own
 * tokens, served on <run>/shared/workload.sock (in every instance at
 * /run/berth/workload.sock, IOTEDGE_WORKLOADURI):
 *   POST /modules/<name>/genid/<genid>/sign?api-version=<v>
 *   {"keyId":"primary","algo":"HMACSHA256","data":"<base64>"}
 *   -> 200 {"digest":"<base64 HMAC-SHA256 with the module key>"}
 * A caller gets answers for its own module only: the peer's cgroup names it.
 * One request per connection; the parser is bounded and pure so it can be
 * tested and fuzzed alone. */
#ifndef BERTH_AGENT_WORKLOAD_H
#define BERTH_AGENT_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/deployment.h"
#include "common/err.h"

#define WORKLOAD_HEADER_MAX  8192
#define WORKLOAD_BODY_MAX    65536
#define WORKLOAD_API_VERSION "2019-01-30"
#define WORKLOAD_SOCKET	     "workload.sock"

struct workload_request {
	char module[MODULE_NAME_MAX + 1];
	char genid[64];
	const char *body; /* points into the buffer given to the parser */
	size_t body_len;
};

/* Parses one HTTP/1.x request from buf. Returns 1 when complete, 0 when more
 * bytes are needed, -1 with err (and *status the HTTP status to answer) when
 * it is malformed, too large or not a sign request. */
NODISCARD int workload_parse_request(const char *buf, size_t len, struct workload_request *req,
				     int *status, struct berr *err);

/* Checks the JSON body and writes the base64 HMAC-SHA256 of its data, keyed
 * with the base64 module key, into digest. */
NODISCARD int workload_sign(const char *body, size_t body_len, const char *module_key_b64,
			    char *digest, size_t cap, int *status, struct berr *err);

#endif
