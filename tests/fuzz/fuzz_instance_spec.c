/* spec.json as a shim reads it back: any input is refused with a message or
 * gives a spec that passes validation and survives a write/read round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct instance_spec *s = NULL;
	struct berr err;
	if (instance_spec_from_json((const char *)data, size, "spec", &s, &err) < 0) {
		if (s || !err.msg[0])
			abort();
		return 0;
	}
	if (instance_spec_validate(s, &err) < 0)
		abort();
	char *json = NULL;
	size_t len = 0;
	/* Strings that are not UTF-8 may be refused on the way out, never
	 * half-written. */
	if (instance_spec_to_json(s, &json, &len, &err) == 0) {
		struct instance_spec *back = NULL;
		if (instance_spec_from_json(json, len, "spec", &back, &err) < 0)
			abort();
		if (strcmp(back->name, s->name) || back->n_binds != s->n_binds)
			abort();
		instance_spec_free(back);
		free(json);
	}
	instance_spec_free(s);
	return 0;
}
