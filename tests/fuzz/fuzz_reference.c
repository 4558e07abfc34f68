/* Image references: parsing never overflows, and a parsed reference
 * formats to one that parses to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[REF_STR_MAX + 16];
	if (size >= sizeof(in))
		size = sizeof(in) - 1;
	memcpy(in, data, size);
	in[size] = '\0';
	struct image_ref r, again;
	struct berr err;
	if (image_ref_parse(in, &r, &err) < 0)
		return 0;
	char out[REF_STR_MAX], out2[REF_STR_MAX];
	image_ref_format(&r, out);
	if (image_ref_parse(out, &again, &err) < 0)
		abort();
	image_ref_format(&again, out2);
	if (strcmp(out, out2))
		abort();
	return 0;
}
