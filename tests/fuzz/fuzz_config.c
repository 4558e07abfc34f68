/* The daemon config parser against hostile input. */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config *cfg = NULL;
	struct berr err;
	if (agent_config_parse((const char *)data, size, "fuzz", &cfg, &err) == 0)
		agent_config_free(cfg);
	return 0;
}
