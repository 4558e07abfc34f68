/* Manifests, indexes and configs from a registry: every parser on the same
 * bytes, as a pull would try them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct berr err;
	(void)oci_document_kind("", body, size);
	(void)oci_document_kind("application/json", body, size);

	struct oci_platform want;
	oci_platform_host(&want);
	struct oci_descriptor d;
	if (oci_index_select(body, size, &want, &d, &err) == 0 && !digest_is_valid(d.digest))
		abort();

	struct oci_manifest m;
	if (oci_manifest_parse(body, size, &m, &err) == 0) {
		for (size_t i = 0; i < m.n_layers; i++)
			if (!digest_is_valid(m.layers[i].digest))
				abort();
		oci_manifest_free(&m);
	}

	struct oci_config c;
	if (oci_config_parse(body, size, &c, &err) == 0) {
		for (size_t i = 0; i < c.n_diff_ids; i++)
			if (!digest_is_valid(c.diff_ids[i]))
				abort();
		oci_config_free(&c);
	}

	char plat[64];
	size_t n = size < sizeof(plat) - 1 ? size : sizeof(plat) - 1;
	memcpy(plat, data, n);
	plat[n] = '\0';
	struct oci_platform p;
	if (oci_platform_parse(plat, &p, &err) == 0)
		(void)oci_platform_score(&want, &p);
	return 0;
}
