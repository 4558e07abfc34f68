/* Docker create options from hostile input, parsed and applied. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/createoptions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jpath where = {"$.createOptions"};
	struct create_options co;
	struct berr err;
	if (create_options_parse((const char *)data, size, &where, &co, &err) < 0)
		return 0;
	static char *ep[] = {"/entry", NULL}, *cmd[] = {"run", NULL};
	struct instance_spec spec = {0};
	(void)create_options_apply(&co, ep, cmd, &spec, &err);
	instance_spec_clear(&spec);
	create_options_clear(&co);
	return 0;
}
