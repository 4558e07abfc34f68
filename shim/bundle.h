/* Private to shim/: OCI runtime bundles (`berth oci run`): config.json to a sandbox. */
#ifndef BERTH_SHIM_BUNDLE_H
#define BERTH_SHIM_BUNDLE_H

#include "common/err.h"
#include "shim/sandbox.h"
#include "shim/shim.h"

/* Reads <bundle_dir>/config.json for the container `id` (an instance name).
 * Fields outside the supported subset are refused by name. */
NODISCARD int bundle_load(const char *bundle_dir, const char *id, struct sandbox **out,
			  struct berr *err);
/* The same from the text of config.json; relative paths are taken from
 * `bundle` (an absolute directory). */
NODISCARD int bundle_parse(const char *json, size_t len, const char *bundle, const char *id,
			   struct sandbox **out, struct berr *err);

#endif
