/* SAS tokens and edgeHub user names as a module presents them at CONNECT.
 * The first byte picks what the rest is:
 *   0  a token, checked against a fixed key and resource: never overrun,
 *      and one that is accepted is accepted for that resource only;
 *   1  a resource ("<host>/<path>"): a token made for it verifies for it, for
 *      no other resource (host names compare without case) and not once
 *      expired;
 *   2  a user name: when it parses, device and module are usable names. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sas.h"
#include "hub/broker.h"

static const char key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
static const char resource[] = "myhub.example.net/devices/dev/modules/a";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	data++;
	size--;
	/* A private NUL-terminated copy, so reading past it would be caught. */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct berr err;
	if (mode == 0) {
		if (sas_token_verify(s, key, resource, 1700000000, &err) == 0 &&
		    sas_token_verify(s, key, "myhub.example.net/devices/dev/modules/b", 1700000000,
				     &err) == 0)
			abort();
	} else if (mode == 1 && !memchr(data, '\0', size) && strchr(s, '/') &&
		   size < SAS_RESOURCE_MAX) {
		char token[SAS_TOKEN_MAX + 1];
		if (sas_token_make(key, s, 4000000000LL, token, sizeof(token), &err) == 0) {
			if (sas_token_verify(token, key, s, 1700000000, &err) < 0)
				abort();
			if (sas_token_verify(token, key, resource, 1700000000, &err) == 0 &&
			    strcasecmp(s, resource))
				abort();
			if (sas_token_verify(token, key, s, 4000000000LL, &err) == 0)
				abort(); /* expired by then */
		}
	} else if (mode == 2) {
		char device[HUB_NAME_MAX + 1], module[HUB_NAME_MAX + 1];
		if (auth_parse_username(s, size, device, module, sizeof(device)) == 0 &&
		    (!hub_name_valid(device) || !hub_name_valid(module)))
			abort();
	}
	free(s);
	return 0;
}
