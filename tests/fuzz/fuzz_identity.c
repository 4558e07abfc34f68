/* IoT Hub's answers to the identity calls (a module's JSON, an error body)
 * as `berth identities` reads them: never overrun, an accepted etag is
 * short and cannot break a header line, and keys match only when equal. */
#include <stdlib.h>
#include <string.h>

#include "agent/identities.h"

static const char primary[] = "VT63U8seDIDSMOCfg00amXUmtQaCDZYSQEQc7xVIAlI=";
static const char secondary[] = "LU92oBS9W2rLt9djRcj2pUfvIU2VBKQfNhQ8nw2hAhQ=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	struct identity_seen seen;
	struct berr err;
	if (identity_parse(s, size, primary, secondary, &seen, &err) == 0) {
		size_t n = strnlen(seen.etag, sizeof(seen.etag));
		if (n == 0 || n > IDENTITY_ETAG_MAX || strpbrk(seen.etag, "\r\n"))
			abort();
		if (seen.keys_match && (!memmem(s, size, primary, strlen(primary)) ||
					!memmem(s, size, secondary, strlen(secondary))))
			abort();
	}
	char text[200];
	identity_error_text(s, size, text, sizeof(text));
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort();
	free(s);
	return 0;
}
