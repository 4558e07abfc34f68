/* The workload API's HTTP request parser and signer against hostile bytes. */
#include <stddef.h>
#include <stdint.h>

#include "agent/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct workload_request req;
	int status;
	struct berr err;
	if (workload_parse_request((const char *)data, size, &req, &status, &err) == 1) {
		char digest[128];
		(void)workload_sign(req.body, req.body_len,
				    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", digest,
				    sizeof(digest), &status, &err);
	}
	return 0;
}
