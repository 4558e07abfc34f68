/* Reported-property patches from modules: any input is refused cleanly or
 * applied, and the twin always saves to a form that loads back the same. */
#include <stdlib.h>
#include <string.h>

#include "hub/twin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct twin *t;
	struct berr err;
	if (!t && twin_new("gen", NULL, 1764000000000LL, &t, &err) < 0)
		abort();
	int64_t before = twin_reported_version(t), version;
	int rc = twin_patch_reported(t, (const char *)data, size, 1764000000000LL, &version, &err);
	if (rc == 0) {
		if (version != before + 1)
			abort();
	} else if (twin_reported_version(t) != before) {
		abort();
	}
	size_t len;
	char *saved = twin_save(t, &len);
	struct twin *back;
	if (!saved || twin_load(saved, len, "saved", &back, &err) < 0)
		abort();
	char *a = twin_get_json(t, NULL), *b = twin_get_json(back, NULL);
	if (!a || !b || strcmp(a, b))
		abort();
	free(a);
	free(b);
	free(saved);
	twin_free(back);
	/* Start over now and then so the twin does not just fill up. */
	if (twin_reported_version(t) > 50) {
		twin_free(t);
		t = NULL;
	}
	return 0;
}
