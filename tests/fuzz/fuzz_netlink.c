/* rtnetlink batches as the hub's network watch reads them: every length
 * is checked, whatever the kernel (or a bug) hands over. */
#include <stdlib.h>
#include <string.h>

#include "hub/upstream_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so reading past it would be caught. */
	unsigned char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	char what[128];
	int rc = netwatch_parse(buf, size, what, sizeof(what));
	if (rc == 1 && !memchr(what, '\0', sizeof(what)))
		abort();
	free(buf);
	return 0;
}
