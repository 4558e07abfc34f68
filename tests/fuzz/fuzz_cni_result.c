/* A CNI plugin's answer is outside input: results and error objects as
 * hostile bytes. An address the parser returns must be an IPv4 address
 * that the input spells out. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_result r;
	struct berr err;
	char msg[256];
	cni_error_message((const char *)data, size, msg, sizeof(msg));
	if (cni_result_parse((const char *)data, size, &r, &err) == 0) {
		struct in_addr a;
		if (inet_pton(AF_INET, r.address, &a) != 1 || r.prefix < 1 || r.prefix > 32)
			abort();
		if (!memmem(data, size, r.address, strlen(r.address)) &&
		    !memchr(data, '\\', size)) /* an escaped spelling of it */
			abort();
	}
	return 0;
}
