/* The /proc/<pid>/cgroup parser the hub runs for every Unix-socket peer:
 * any input either fails cleanly or names a valid instance that every line
 * naming an instance agrees on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cgroup_proc.h"
#include "common/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[65];
	struct berr err;
	int r = cgroup_parse_proc_cgroup((const char *)data, size, name, sizeof(name), &err);
	if (r == 0) {
		size_t len = strlen(name);
		if (!name_valid(name, len, INSTANCE_NAME_MAX))
			abort();
		/* The name came from a "/berth/<name>" path in the input. */
		char needle[80];
		memcpy(needle, "/berth/", 7);
		memcpy(needle + 7, name, len);
		if (!memmem(data, size, needle, 7 + len))
			abort();
	} else if (r != 1 && r != -1) {
		abort();
	}
	/* A small buffer must never be overrun. */
	char tiny[3];
	(void)cgroup_parse_proc_cgroup((const char *)data, size, tiny, sizeof(tiny), &err);
	return 0;
}
