/* The gateway's HTTPS request parser (module-to-module direct methods)
 * against hostile bytes: what it accepts names valid identities, carries a
 * token without NUL, a method name and a timeout in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/gateway_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gateway_method_request req;
	int status;
	struct berr err;
	int rc = gateway_http_parse((const char *)data, size, &req, &status, &err);
	if (rc == 1) {
		if (!hub_name_valid(req.device) || !hub_name_valid(req.module) ||
		    !hub_name_valid(req.caller_device) || !hub_name_valid(req.caller_module) ||
		    !req.token[0] || !req.method[0] || req.timeout_secs < 1 ||
		    req.timeout_secs > GATEWAY_METHOD_TIMEOUT_MAX || !req.body)
			abort();
	} else if (rc < 0 && (status < 400 || status > 599)) {
		abort();
	}
	gateway_method_request_clear(&req);
	return 0;
}
