/* WWW-Authenticate values as a registry (or anyone in between) sends them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	struct auth_challenge c;
	struct berr err;
	if (auth_challenge_parse(in, &c, &err) == 0) {
		if (c.scheme != AUTH_BASIC && c.scheme != AUTH_BEARER)
			abort();
		if (strlen(c.realm) >= sizeof(c.realm) || strlen(c.scope) >= sizeof(c.scope))
			abort();
	}
	free(in);
	return 0;
}
