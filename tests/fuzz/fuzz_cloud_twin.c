/* What the cloud sends for a twin (hub/upstream_twin.c): a GET answer's
 * desired section and desired patches. Any input is refused cleanly or
 * applied at the cloud's version; the reported difference against a base
 * always applies back to the reported properties it came from. */
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "hub/twin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct twin *t;
	struct berr err;
	if (!t && twin_new("gen", NULL, 1764000000000LL, &t, &err) < 0)
		abort();
	int64_t before = twin_desired_version(t);
	/* As a desired patch at the next version. */
	if (twin_patch_desired(t, (const char *)data, size, before + 1, 1764000000000LL, &err) ==
	    0) {
		if (twin_desired_version(t) != before + 1)
			abort();
	} else if (twin_desired_version(t) != before) {
		abort();
	}
	yajl_val v = NULL;
	if (json_parse((const char *)data, size, 1 << 20, "fuzz", &v, &err) == 0 &&
	    YAJL_IS_OBJECT(v)) {
		/* As the whole desired section, and as a base for the reported one. */
		char *patch = NULL;
		if (twin_sync_desired(t, v, 77, 1764000000000LL, &patch, &err) == 0 &&
		    twin_desired_version(t) != 77)
			abort();
		free(patch);
		if (twin_reported_diff(t, v, &patch, &err) == 0 && patch) {
			struct twin *other;
			int64_t version;
			if (twin_new("gen", NULL, 0, &other, &err) < 0)
				abort();
			/* base + patch == the reported properties (when base fits). */
			if (twin_set_reported(other, v, 0, 0, &err) == 0 &&
			    twin_patch_reported(other, patch, strlen(patch), 0, &version, &err) ==
				0) {
				char *a = twin_reported_values(t), *b = twin_reported_values(other);
				if (!a || !b || strcmp(a, b))
					abort();
				free(a);
				free(b);
			}
			twin_free(other);
		}
		free(patch);
	}
	yajl_tree_free(v);
	if (twin_desired_version(t) > 50) {
		twin_free(t);
		t = NULL;
	}
	return 0;
}
