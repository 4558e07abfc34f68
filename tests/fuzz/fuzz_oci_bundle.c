/* config.json of an OCI bundle: refused with a message naming the problem,
 * or turned into a sandbox whose strings and counts hold together. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sandbox *sb = NULL;
	struct berr err;
	if (bundle_parse((const char *)data, size, "/", "fuzz", &sb, &err) < 0) {
		if (sb || !err.msg[0])
			abort();
		return 0;
	}
	if (!sb->args || !sb->args[0] || !sb->cwd || sb->cwd[0] != '/' || !sb->rootfs_dir ||
	    !(sb->clone_flags & 0x00020000 /* CLONE_NEWNS */))
		abort();
	for (size_t i = 0; i < sb->n_mounts; i++)
		if (!sb->mounts[i].destination || sb->mounts[i].destination[0] != '/')
			abort();
	if (sb->limits.n_devices && !sb->limits.devices)
		abort();
	sandbox_free(sb);
	return 0;
}
