#include "oci/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/names.h"
#include "registry/registry.h"

#define MT_OCI_INDEX		 "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST		 "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG		 "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST		 "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST	 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG	 "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_SCHEMA1	 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* A registry's document, bounded in size and in values. */
static int parse_json(const char *body, size_t len, size_t max, const char *what, yajl_val *v,
		      struct berr *err)
{
	return json_parse_limited(body, len, max, DOCUMENT_VALUES_MAX, what, v, err);
}

static enum oci_kind kind_of_type(const char *t)
{
	if (!strcmp(t, MT_OCI_INDEX) || !strcmp(t, MT_DOCKER_LIST))
		return OCI_KIND_INDEX;
	if (!strcmp(t, MT_OCI_MANIFEST) || !strcmp(t, MT_DOCKER_MANIFEST))
		return OCI_KIND_MANIFEST;
	if (!strcmp(t, MT_DOCKER_SCHEMA1) || !strcmp(t, MT_DOCKER_SCHEMA1_SIGNED))
		return OCI_KIND_SCHEMA1;
	return OCI_KIND_UNKNOWN;
}

enum oci_kind oci_document_kind(const char *media_type, const char *body, size_t len)
{
	enum oci_kind k = media_type ? kind_of_type(media_type) : OCI_KIND_UNKNOWN;
	if (k != OCI_KIND_UNKNOWN)
		return k;
	/* Only a missing or generic Content-Type lets the body decide. */
	if (media_type && media_type[0] && strcmp(media_type, "application/json") &&
	    strcmp(media_type, "text/plain") && strcmp(media_type, "application/octet-stream"))
		return OCI_KIND_UNKNOWN;
	cleanup_yajl yajl_val v = NULL;
	struct berr e;
	if (parse_json(body, len, MANIFEST_MAX, "manifest", &v, &e) < 0)
		return OCI_KIND_UNKNOWN;
	const char *mt = json_str(json_get(v, "mediaType"));
	yajl_val sv = json_get(v, "schemaVersion");
	if (mt)
		k = kind_of_type(mt);
	else if (YAJL_IS_INTEGER(sv) && YAJL_GET_INTEGER(sv) == 1)
		k = OCI_KIND_SCHEMA1;
	else if (YAJL_IS_ARRAY(json_get(v, "manifests")))
		k = OCI_KIND_INDEX;
	else if (YAJL_IS_OBJECT(json_get(v, "config")) && YAJL_IS_ARRAY(json_get(v, "layers")))
		k = OCI_KIND_MANIFEST;
	return k;
}

/* ---- platforms ---------------------------------------------------------- */

static bool platform_word_ok(const char *s, size_t n, size_t cap)
{
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

int oci_platform_parse(const char *s, struct oci_platform *p, struct berr *err)
{
	memset(p, 0, sizeof(*p));
	const char *a = strchr(s, '/');
	if (!a)
		return berr_set(err, 0, "platform \"%.64s\": expected os/arch[/variant]", s);
	const char *v = strchr(a + 1, '/');
	size_t os_len = (size_t)(a - s);
	size_t arch_len = v ? (size_t)(v - a - 1) : strlen(a + 1);
	size_t var_len = v ? strlen(v + 1) : 0;
	if (!platform_word_ok(s, os_len, sizeof(p->os)) ||
	    !platform_word_ok(a + 1, arch_len, sizeof(p->arch)) ||
	    (v && !platform_word_ok(v + 1, var_len, sizeof(p->variant))))
		return berr_set(err, 0, "platform \"%.64s\": expected os/arch[/variant]", s);
	memcpy(p->os, s, os_len);
	memcpy(p->arch, a + 1, arch_len);
	if (v)
		memcpy(p->variant, v + 1, var_len);
	return 0;
}

void oci_platform_host(struct oci_platform *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->os, sizeof(p->os), "linux");
#if defined(__x86_64__)
	snprintf(p->arch, sizeof(p->arch), "amd64");
#elif defined(__aarch64__)
	snprintf(p->arch, sizeof(p->arch), "arm64");
	snprintf(p->variant, sizeof(p->variant), "v8");
#elif defined(__arm__)
	snprintf(p->arch, sizeof(p->arch), "arm");
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
	snprintf(p->variant, sizeof(p->variant), "v7");
#else
	snprintf(p->variant, sizeof(p->variant), "v6");
#endif
#elif defined(__i386__)
	snprintf(p->arch, sizeof(p->arch), "386");
#elif defined(__riscv) && __riscv_xlen == 64
	snprintf(p->arch, sizeof(p->arch), "riscv64");
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	snprintf(p->arch, sizeof(p->arch), "ppc64le");
#elif defined(__s390x__)
	snprintf(p->arch, sizeof(p->arch), "s390x");
#else
	snprintf(p->arch, sizeof(p->arch), "unknown");
#endif
}

void oci_platform_format(const struct oci_platform *p, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

/* arm64 without a variant means v8. */
static const char *effective_variant(const struct oci_platform *p)
{
	if (!p->variant[0] && !strcmp(p->arch, "arm64"))
		return "v8";
	return p->variant;
}

int oci_platform_score(const struct oci_platform *want, const struct oci_platform *have)
{
	if (strcmp(want->os, have->os) || strcmp(want->arch, have->arch))
		return 0;
	const char *wv = effective_variant(want), *hv = effective_variant(have);
	if (!strcmp(wv, hv))
		return 100;
	if (!wv[0])
		return 50; /* no preference: any variant does */
	if (!hv[0])
		return 40; /* the image claims no variant: assume it is generic */
	/* 32-bit arm: a v7 machine runs v6 and v5 code. */
	if (!strcmp(want->arch, "arm") && wv[0] == 'v' && hv[0] == 'v' && atoi(hv + 1) > 0 &&
	    atoi(hv + 1) < atoi(wv + 1))
		return 10 + atoi(hv + 1);
	return 0;
}

/* ---- descriptors -------------------------------------------------------- */

static int copy_str(char *dst, size_t cap, const char *s, const char *what, struct berr *err)
{
	if (strlen(s) >= cap)
		return berr_set(err, 0, "%s: too long", what);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int parse_descriptor(yajl_val v, const char *path, struct oci_descriptor *d,
			    struct berr *err)
{
	memset(d, 0, sizeof(*d));
	const char *mt = NULL, *digest = NULL;
	long long size = 0;
	if (json_expect_object(v, path, err) < 0 ||
	    json_get_str(v, "mediaType", path, false, &mt, err) < 0 ||
	    json_get_str(v, "digest", path, true, &digest, err) < 0 ||
	    json_get_int(v, "size", path, true, &size, err) < 0)
		return -1;
	if (!digest_is_valid(digest))
		return berr_set(err, 0, "%s.digest: malformed digest \"%.80s\"", path, digest);
	if (size < 0 || (unsigned long long)size > (1ULL << 40))
		return berr_set(err, 0, "%s.size: out of range", path);
	if (mt && copy_str(d->media_type, sizeof(d->media_type), mt, path, err) < 0)
		return -1;
	memcpy(d->digest, digest, strlen(digest) + 1);
	d->size = (uint64_t)size;
	yajl_val plat = json_get(v, "platform");
	if (YAJL_IS_OBJECT(plat)) {
		const char *os = json_str(json_get(plat, "os"));
		const char *arch = json_str(json_get(plat, "architecture"));
		const char *var = json_str(json_get(plat, "variant"));
		if (os && arch && strlen(os) < sizeof(d->platform.os) &&
		    strlen(arch) < sizeof(d->platform.arch) &&
		    (!var || strlen(var) < sizeof(d->platform.variant))) {
			d->has_platform = true;
			snprintf(d->platform.os, sizeof(d->platform.os), "%s", os);
			snprintf(d->platform.arch, sizeof(d->platform.arch), "%s", arch);
			snprintf(d->platform.variant, sizeof(d->platform.variant), "%s",
				 var ? var : "");
		}
	}
	return 0;
}

int oci_index_list(const char *body, size_t len, struct oci_descriptor **out, size_t *n,
		   struct berr *err)
{
	*out = NULL;
	*n = 0;
	cleanup_yajl yajl_val v = NULL;
	yajl_val arr = NULL;
	if (parse_json(body, len, MANIFEST_MAX, "index", &v, err) < 0 ||
	    json_get_array(v, "manifests", "index", true, &arr, err) < 0)
		return -1;
	if (arr->u.array.len > 4096)
		return berr_set(err, 0, "index: more than 4096 manifests");
	cleanup_free struct oci_descriptor *d = calloc(arr->u.array.len + 1, sizeof(*d));
	if (!d)
		return berr_set(err, ENOMEM, "index");
	for (size_t i = 0; i < arr->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "index.manifests[%zu]", i);
		if (parse_descriptor(arr->u.array.values[i], path, &d[i], err) < 0)
			return -1;
	}
	*out = take_ptr(d);
	*n = arr->u.array.len;
	return 0;
}

int oci_index_select(const char *body, size_t len, const struct oci_platform *want,
		     struct oci_descriptor *out, struct berr *err)
{
	struct oci_descriptor *d;
	size_t n;
	if (oci_index_list(body, len, &d, &n, err) < 0)
		return -1;
	int best = 0;
	size_t best_i = 0;
	char have[512] = "";
	size_t hl = 0;
	for (size_t i = 0; i < n; i++) {
		if (kind_of_type(d[i].media_type) != OCI_KIND_MANIFEST || !d[i].has_platform)
			continue;
		int s = oci_platform_score(want, &d[i].platform);
		if (s > best) {
			best = s;
			best_i = i;
		}
		char p[96];
		oci_platform_format(&d[i].platform, p, sizeof(p));
		if (hl < sizeof(have) - 1)
			hl += (size_t)snprintf(have + hl, sizeof(have) - hl, "%s%s", hl ? ", " : "",
					       p);
	}
	int ret = 0;
	if (best == 0) {
		char w[96];
		oci_platform_format(want, w, sizeof(w));
		ret = berr_set(err, 0, "no image for platform %s in the index (it has: %s)", w,
			       have[0] ? have : "none");
	} else {
		*out = d[best_i];
	}
	free(d);
	return ret;
}

static enum oci_compression layer_compression(const char *mt, bool *ok)
{
	static const struct name_value known[] = {
	    {"application/vnd.oci.image.layer.v1.tar", OCI_COMP_NONE},
	    {"application/vnd.oci.image.layer.v1.tar+gzip", OCI_COMP_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", OCI_COMP_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar", OCI_COMP_NONE},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OCI_COMP_GZIP},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", OCI_COMP_ZSTD},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_COMP_GZIP},
	    {"application/vnd.docker.image.rootfs.diff.tar.zstd", OCI_COMP_ZSTD},
	};
	const struct name_value *k = name_value_find(known, ARRAY_SIZE(known), mt);
	*ok = k != NULL;
	return k ? (enum oci_compression)k->value : OCI_COMP_NONE;
}

void oci_manifest_free(struct oci_manifest *m)
{
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

static int manifest_fill(yajl_val v, struct oci_manifest *m, struct berr *err)
{
	yajl_val cfg = NULL, layers = NULL;
	long long sv = 0;
	if (json_get_int(v, "schemaVersion", "manifest", true, &sv, err) < 0)
		return -1;
	if (sv != 2)
		return berr_set(err, 0, "manifest: schemaVersion %lld is not supported", sv);
	if (json_get_obj(v, "config", "manifest", true, &cfg, err) < 0 ||
	    json_get_array(v, "layers", "manifest", true, &layers, err) < 0 ||
	    parse_descriptor(cfg, "manifest.config", &m->config, err) < 0)
		return -1;
	if (strcmp(m->config.media_type, MT_OCI_CONFIG) &&
	    strcmp(m->config.media_type, MT_DOCKER_CONFIG))
		return berr_set(
		    err, 0,
		    "manifest.config: unknown media type \"%.100s\" (not a container image)",
		    m->config.media_type);
	if (layers->u.array.len > LAYERS_MAX)
		return berr_set(err, 0, "manifest: %zu layers is more than %d", layers->u.array.len,
				LAYERS_MAX);
	m->layers = calloc(layers->u.array.len + 1, sizeof(*m->layers));
	if (!m->layers)
		return berr_set(err, ENOMEM, "manifest");
	for (size_t i = 0; i < layers->u.array.len; i++) {
		char path[48];
		snprintf(path, sizeof(path), "manifest.layers[%zu]", i);
		struct oci_descriptor *d = &m->layers[i];
		if (parse_descriptor(layers->u.array.values[i], path, d, err) < 0)
			return -1;
		bool ok;
		d->compression = layer_compression(d->media_type, &ok);
		if (!ok)
			return berr_set(err, 0, "%s: unknown layer media type \"%.100s\"", path,
					d->media_type);
		m->n_layers++;
	}
	return 0;
}

int oci_manifest_parse(const char *body, size_t len, struct oci_manifest *m, struct berr *err)
{
	memset(m, 0, sizeof(*m));
	cleanup_yajl yajl_val v = NULL;
	if (parse_json(body, len, MANIFEST_MAX, "manifest", &v, err) < 0)
		return -1;
	if (manifest_fill(v, m, err) < 0) {
		oci_manifest_free(m);
		return -1;
	}
	return 0;
}

/* ---- config ------------------------------------------------------------- */

void oci_config_free(struct oci_config *c)
{
	strv_free_many(c->entrypoint, c->cmd, c->env);
	free_many(c->diff_ids, c->working_dir, c->user, c->os, c->architecture, c->variant,
		  c->healthcheck);
	memset(c, 0, sizeof(*c));
}

static int get_strv(yajl_val obj, const char *key, char ***out, struct berr *err)
{
	return json_get_strv(obj, key, "config.config", 65536, 0, out, err);
}

static int get_dup(yajl_val obj, const char *key, const char *path, char **out, struct berr *err)
{
	const char *s = NULL;
	*out = NULL;
	yajl_val m = json_get(obj, key);
	if (!m || YAJL_IS_NULL(m))
		return 0; /* Docker writes null for unset fields */
	if (json_get_str(obj, key, path, false, &s, err) < 0)
		return -1;
	if (s && !(*out = strdup(s)))
		return berr_set(err, ENOMEM, "config");
	return 0;
}

static int config_fill(yajl_val v, struct oci_config *c, struct berr *err)
{
	yajl_val rootfs = NULL, ids = NULL, cc = NULL;
	if (!YAJL_IS_OBJECT(v))
		return berr_set(err, 0, "config: expected an object");
	if (json_get_obj(v, "rootfs", "config", true, &rootfs, err) < 0 ||
	    json_get_array(rootfs, "diff_ids", "config.rootfs", true, &ids, err) < 0)
		return -1;
	if (ids->u.array.len > LAYERS_MAX)
		return berr_set(err, 0, "config.rootfs.diff_ids: more than %d", LAYERS_MAX);
	c->diff_ids = calloc(ids->u.array.len + 1, sizeof(*c->diff_ids));
	if (!c->diff_ids)
		return berr_set(err, ENOMEM, "config");
	for (size_t i = 0; i < ids->u.array.len; i++) {
		const char *s = json_str(ids->u.array.values[i]);
		if (!s || !digest_is_valid(s))
			return berr_set(err, 0, "config.rootfs.diff_ids[%zu]: not a digest", i);
		memcpy(c->diff_ids[i], s, strlen(s) + 1);
		c->n_diff_ids++;
	}
	if (get_dup(v, "os", "config", &c->os, err) < 0 ||
	    get_dup(v, "architecture", "config", &c->architecture, err) < 0 ||
	    get_dup(v, "variant", "config", &c->variant, err) < 0)
		return -1;
	if (!YAJL_IS_NULL(json_get(v, "config")) &&
	    json_get_obj(v, "config", "config", false, &cc, err) < 0)
		return -1;
	if (cc && (get_strv(cc, "Entrypoint", &c->entrypoint, err) < 0 ||
		   get_strv(cc, "Cmd", &c->cmd, err) < 0 || get_strv(cc, "Env", &c->env, err) < 0 ||
		   get_dup(cc, "WorkingDir", "config.config", &c->working_dir, err) < 0 ||
		   get_dup(cc, "User", "config.config", &c->user, err) < 0))
		return -1;
	/* Kept as it is: the daemon reads it with createOptions' Healthcheck. */
	yajl_val hc = json_get(cc, "Healthcheck");
	if (hc && YAJL_IS_OBJECT(hc)) {
		yajl_gen g = json_gen_new(false);
		if (!g || json_gen_val(g, hc) < 0 || !(c->healthcheck = json_gen_finish(g, NULL))) {
			if (g)
				yajl_gen_free(g);
			return berr_set(err, ENOMEM, "config.config.Healthcheck");
		}
		yajl_gen_free(g);
	}
	return 0;
}

int oci_config_parse(const char *body, size_t len, struct oci_config *c, struct berr *err)
{
	memset(c, 0, sizeof(*c));
	cleanup_yajl yajl_val v = NULL;
	if (parse_json(body, len, CONFIG_MAX, "config", &v, err) < 0)
		return -1;
	if (config_fill(v, c, err) < 0) {
		oci_config_free(c);
		return -1;
	}
	return 0;
}
