/* Private to hub/: the gateway's HTTPS (port 443), where the Azure IoT SDKs
 * send module-to-module direct methods, as to edgeHub:
 *   POST /twins/<device>/modules/<module>/methods[?api-version=...]
 *   x-ms-edge-moduleId: <device>/<caller>
 *   Authorization: SharedAccessSignature sr=<hub>/devices/<device>/modules/<caller>&...
 *   {"methodName": "...", "payload": <JSON>, "responseTimeoutInSeconds": n}
 * (the C SDK sends "timeout" for the response timeout). The answer is 200
 * {"status": <the module's status>, "payload": <its answer>}, or an error
 * status with {"status": n, "payload": null, "message": "..."}.
 * One request per connection, bounded like the workload API's; the parser
 * is pure, so it is tested and fuzzed alone. */
#ifndef BERTH_HUB_GATEWAY_HTTP_H
#define BERTH_HUB_GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "common/err.h"
#include "common/sas.h"
#include "hub/config.h"

#define GATEWAY_HTTP_HEADER_MAX	       8192
#define GATEWAY_HTTP_BODY_MAX	       (160 * 1024) /* a method payload of 128 KiB and its wrapping */
#define GATEWAY_METHOD_TIMEOUT_DEFAULT 30
#define GATEWAY_METHOD_TIMEOUT_MAX     300

struct gateway_method_request {
	char device[HUB_NAME_MAX + 1]; /* the target */
	char module[HUB_NAME_MAX + 1];
	char caller_device[HUB_NAME_MAX + 1]; /* x-ms-edge-moduleId */
	char caller_module[HUB_NAME_MAX + 1];
	char token[SAS_TOKEN_MAX + 1];
	char method[129];
	yajl_val body;	  /* the parsed body: free with gateway_method_request_clear() */
	yajl_val payload; /* inside body; NULL for none */
	int timeout_secs;
};

/* Parses one request. 1 complete (req filled), 0 more bytes needed, -1
 * with err and *status (the HTTP status to answer). */
NODISCARD int gateway_http_parse(const char *buf, size_t len, struct gateway_method_request *req,
				 int *status, struct berr *err);
void gateway_method_request_clear(struct gateway_method_request *req);

#endif
