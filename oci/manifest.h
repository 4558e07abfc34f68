/* Private to oci/: image formats: indexes, manifests and configs, OCI and
 * Docker v2 schema 2, and platform selection from an index. Every parser
 * bounds what it reads and names the document in its errors. */
#ifndef BERTH_OCI_MANIFEST_H
#define BERTH_OCI_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "common/err.h"

#define CONFIG_MAX (8u << 20)
/* Values in one manifest, index or config: real ones hold a few hundred (an
 * index of 4096 images some 50,000), and each costs memory when parsed. */
#define DOCUMENT_VALUES_MAX 100000
#define LAYERS_MAX	    256 /* more layers than overlayfs can stack anyway */

enum oci_kind { OCI_KIND_UNKNOWN, OCI_KIND_INDEX, OCI_KIND_MANIFEST, OCI_KIND_SCHEMA1 };
enum oci_compression { OCI_COMP_NONE, OCI_COMP_GZIP, OCI_COMP_ZSTD };

struct oci_platform {
	char os[32];
	char arch[32];
	char variant[16];
};

struct oci_descriptor {
	char media_type[256];
	char digest[DIGEST_STR_MAX];
	uint64_t size;
	enum oci_compression compression; /* layers only */
	bool has_platform;
	struct oci_platform platform;
};

struct oci_manifest {
	struct oci_descriptor config;
	size_t n_layers;
	struct oci_descriptor *layers;
};

struct oci_config {
	size_t n_diff_ids;
	char (*diff_ids)[DIGEST_STR_MAX];
	char **entrypoint; /* NULL-terminated, or NULL */
	char **cmd;
	char **env;
	char *working_dir;
	char *user;
	char *os;
	char *architecture;
	char *variant;
	char *healthcheck; /* config.Healthcheck as compact JSON, or NULL */
};

/* What a document is, from its Content-Type (may be "" or generic JSON) and,
 * failing that, its body. */
enum oci_kind oci_document_kind(const char *media_type, const char *body, size_t len);

/* "os/arch[/variant]"; arch names as Go spells them (amd64, arm64, arm). */
NODISCARD int oci_platform_parse(const char *s, struct oci_platform *p, struct berr *err);
/* The platform this binary runs on. */
void oci_platform_host(struct oci_platform *p);
void oci_platform_format(const struct oci_platform *p, char *out, size_t cap);
/* 0 if the descriptor's platform does not suit `want`, higher for better. */
int oci_platform_score(const struct oci_platform *want, const struct oci_platform *have);

/* Picks the best manifest for `want` from an index; entries of unknown media
 * types (attestations, nested indexes) are skipped. */
NODISCARD int oci_index_select(const char *body, size_t len, const struct oci_platform *want,
			       struct oci_descriptor *out, struct berr *err);
/* Lists an index's manifest descriptors (for gc); *out malloc'd. */
NODISCARD int oci_index_list(const char *body, size_t len, struct oci_descriptor **out, size_t *n,
			     struct berr *err);

NODISCARD int oci_manifest_parse(const char *body, size_t len, struct oci_manifest *m,
				 struct berr *err);
void oci_manifest_free(struct oci_manifest *m);

NODISCARD int oci_config_parse(const char *body, size_t len, struct oci_config *c,
			       struct berr *err);
void oci_config_free(struct oci_config *c);

#endif
