/* Docker create options from hostile input, parsed and applied. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/createoptions.h"

static void spec_clear(struct instance_spec *s)
{
	strv_free(s->args);
	free(s->cwd);
	free(s->user);
	free(s->hostname);
	for (size_t i = 0; i < s->n_binds; i++) {
		free(s->binds[i].source);
		free(s->binds[i].destination);
	}
	free(s->binds);
	for (size_t i = 0; i < s->n_devices; i++) {
		free(s->devices[i].path);
		free(s->devices[i].path_in);
		free(s->devices[i].permissions);
	}
	free(s->devices);
	strv_free(s->cap_add);
	strv_free(s->cap_drop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jpath where = {"$.createOptions"};
	struct create_options co;
	struct berr err;
	if (create_options_parse((const char *)data, size, &where, &co, &err) < 0)
		return 0;
	static char *ep[] = {"/entry", NULL}, *cmd[] = {"run", NULL};
	struct instance_spec spec = {0};
	create_options_apply(&co, ep, cmd, &spec, &err);
	spec_clear(&spec);
	create_options_clear(&co);
	return 0;
}
