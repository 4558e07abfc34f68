/* Deployment manifests (with their createOptions) from hostile input: the
 * parser must refuse or accept without crashing, leaking or overreading. */
#include <stddef.h>
#include <stdint.h>

#include "agent/deployment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct deployment *d = NULL;
	struct berr err;
	struct deployment_policy pol = {.allow_privileged = size & 1};
	if (deployment_parse((const char *)data, size, "fuzz", &pol, &d, &err) == 0)
		deployment_free(d);
	return 0;
}
