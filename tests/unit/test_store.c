/* oci/: manifest, index and config parsing, platform matching, and the
 * store's tags, leases and garbage collection on a store built by hand. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "oci/manifest.h"
#include "oci/store.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char *MANIFEST =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
    "\",\"size\":10},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2
    "\",\"size\":20},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3
    "\",\"size\":30},"
    "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2
    "\",\"size\":20},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D3
    "\",\"size\":30}]}";

static char *index_json(void)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf),
		 "{\"schemaVersion\":2,\"manifests\":["
		 "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
		 "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":"
		 "\"v6\"}},"
		 "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
		 "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
		 "{\"mediaType\":\"application/vnd.example.attestation\",\"digest\":\"%s\","
		 "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
		 "{\"mediaType\":\"application/"
		 "vnd.docker.distribution.manifest.v2+json\",\"digest\":\"%s\","
		 "\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
		 D1, D2, D1, D3);
	return buf;
}

static enum oci_kind kind(const char *mt, const char *body)
{
	return oci_document_kind(mt, body, strlen(body));
}

static void document_kind_comes_from_content_type_then_body(void **state)
{
	assert_int_equal(kind("application/vnd.oci.image.index.v1+json", "{}"), OCI_KIND_INDEX);
	assert_int_equal(kind("application/vnd.docker.distribution.manifest.v2+json", "{}"),
			 OCI_KIND_MANIFEST);
	assert_int_equal(kind("application/vnd.docker.distribution.manifest.v1+prettyjws", "{}"),
			 OCI_KIND_SCHEMA1);
	assert_int_equal(kind("", MANIFEST), OCI_KIND_MANIFEST);
	assert_int_equal(kind("application/json", index_json()), OCI_KIND_INDEX);
	assert_int_equal(kind("", "{\"schemaVersion\":1,\"fsLayers\":[]}"), OCI_KIND_SCHEMA1);
	assert_int_equal(kind("application/vnd.example+json", MANIFEST), OCI_KIND_UNKNOWN);
	assert_int_equal(kind("", "not json"), OCI_KIND_UNKNOWN);
}

static void platform_strings_parse(void **state)
{
	struct oci_platform p;
	struct berr err;
	assert_int_equal(oci_platform_parse("linux/arm64/v8", &p, &err), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.arch, "arm64");
	assert_string_equal(p.variant, "v8");
	assert_int_equal(oci_platform_parse("linux/amd64", &p, &err), 0);
	assert_string_equal(p.variant, "");
	assert_int_equal(oci_platform_parse("linux", &p, &err), -1);
	assert_int_equal(oci_platform_parse("linux/", &p, &err), -1);
	assert_int_equal(oci_platform_parse("linux/amd64/", &p, &err), -1);
	assert_int_equal(oci_platform_parse("Linux/AMD64", &p, &err), -1);
	assert_int_equal(oci_platform_parse("linux/arm/v7/extra", &p, &err), -1);
}

static void platform_matching_prefers_exact_variants(void **state)
{
	struct oci_platform want, have;
	struct berr err;
	assert_int_equal(oci_platform_parse("linux/arm64/v8", &want, &err), 0);
	assert_int_equal(oci_platform_parse("linux/arm64", &have, &err), 0);
	assert_int_equal(oci_platform_score(&want, &have), 100); /* arm64 means v8 */
	assert_int_equal(oci_platform_parse("linux/amd64", &have, &err), 0);
	assert_int_equal(oci_platform_score(&want, &have), 0);
	assert_int_equal(oci_platform_parse("linux/arm/v7", &want, &err), 0);
	assert_int_equal(oci_platform_parse("linux/arm/v6", &have, &err), 0);
	int v6 = oci_platform_score(&want, &have);
	assert_int_equal(oci_platform_parse("linux/arm/v7", &have, &err), 0);
	int v7 = oci_platform_score(&want, &have);
	assert_true(v6 > 0 && v7 > v6);
	assert_int_equal(oci_platform_parse("linux/arm/v6", &want, &err), 0);
	assert_int_equal(oci_platform_parse("linux/arm/v7", &have, &err), 0);
	assert_int_equal(oci_platform_score(&want, &have), 0); /* v6 cannot run v7 */
	assert_int_equal(oci_platform_parse("windows/amd64", &have, &err), 0);
	assert_int_equal(oci_platform_parse("linux/amd64", &want, &err), 0);
	assert_int_equal(oci_platform_score(&want, &have), 0);
}

static void index_selection_skips_unknown_media_types(void **state)
{
	struct oci_platform want;
	struct oci_descriptor d;
	struct berr err;
	char *idx = index_json();
	assert_int_equal(oci_platform_parse("linux/amd64", &want, &err), 0);
	assert_int_equal(oci_index_select(idx, strlen(idx), &want, &d, &err), 0);
	assert_string_equal(d.digest, D3);
	assert_int_equal(oci_platform_parse("linux/arm64/v8", &want, &err), 0);
	assert_int_equal(oci_index_select(idx, strlen(idx), &want, &d, &err), 0);
	assert_string_equal(d.digest, D2);
	assert_int_equal(oci_platform_parse("linux/arm/v7", &want, &err), 0);
	assert_int_equal(oci_index_select(idx, strlen(idx), &want, &d, &err), 0);
	assert_string_equal(d.digest, D1);
}

static void index_without_the_platform_lists_what_it_has(void **state)
{
	struct oci_platform want;
	struct oci_descriptor d;
	struct berr err;
	char *idx = index_json();
	assert_int_equal(oci_platform_parse("linux/riscv64", &want, &err), 0);
	assert_int_equal(oci_index_select(idx, strlen(idx), &want, &d, &err), -1);
	assert_non_null(strstr(err.msg, "no image for platform linux/riscv64"));
	assert_non_null(strstr(err.msg, "linux/arm/v6, linux/arm64, linux/amd64"));
}

static void manifest_layers_carry_their_compression(void **state)
{
	struct oci_manifest m;
	struct berr err;
	assert_int_equal(oci_manifest_parse(MANIFEST, strlen(MANIFEST), &m, &err), 0);
	assert_string_equal(m.config.digest, D1);
	assert_int_equal(m.config.size, 10);
	assert_int_equal(m.n_layers, 4);
	assert_int_equal(m.layers[0].compression, OCI_COMP_GZIP);
	assert_int_equal(m.layers[1].compression, OCI_COMP_ZSTD);
	assert_int_equal(m.layers[2].compression, OCI_COMP_GZIP);
	assert_int_equal(m.layers[3].compression, OCI_COMP_NONE);
	oci_manifest_free(&m);
}

static void expect_bad_manifest(const char *from, const char *to, const char *why)
{
	char buf[4096];
	const char *at = strstr(MANIFEST, from);
	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - MANIFEST), MANIFEST, to,
		 at + strlen(from));
	struct oci_manifest m;
	struct berr err;
	assert_int_equal(oci_manifest_parse(buf, strlen(buf), &m, &err), -1);
	if (!strstr(err.msg, why))
		fail_msg("\"%s\" lacks \"%s\"", err.msg, why);
}

static void bad_manifests_are_refused_naming_the_field(void **state)
{
	expect_bad_manifest("v1.tar+zstd", "v1.tar+lz4",
			    "manifest.layers[1]: unknown layer media type");
	expect_bad_manifest("\"schemaVersion\":2", "\"schemaVersion\":1", "schemaVersion 1");
	expect_bad_manifest("image.config.v1+json", "image.config.v9+json",
			    "manifest.config: unknown media type");
	expect_bad_manifest("\"size\":20", "\"size\":-1", "manifest.layers[0].size");
	expect_bad_manifest("\"size\":10", "\"size\":\"10\"",
			    "manifest.config.size: expected an integer");
	expect_bad_manifest(D1, "sha256:xyz", "manifest.config.digest: malformed digest");
	expect_bad_manifest("\"layers\":[", "\"layerz\":[", "manifest.layers: required");
}

/* A few MiB of "[0,0,0,...]" would take hundreds of MiB as a tree. */
static void documents_with_too_many_values_are_refused_before_parsing(void **state)
{
	size_t n = DOCUMENT_VALUES_MAX + 1;
	char *doc = malloc(2 * n + 64);
	size_t len = (size_t)sprintf(doc, "{\"schemaVersion\":2,\"pad\":[0");
	for (size_t i = 1; i < n; i++) {
		doc[len++] = ',';
		doc[len++] = '0';
	}
	len += (size_t)sprintf(doc + len, "]}");
	struct berr err;
	struct oci_manifest m;
	assert_int_equal(oci_manifest_parse(doc, len, &m, &err), -1);
	assert_non_null(strstr(err.msg, "manifest: more than 100000 values"));
	struct oci_config c;
	assert_int_equal(oci_config_parse(doc, len, &c, &err), -1);
	assert_non_null(strstr(err.msg, "config: more than 100000 values"));
	struct oci_descriptor d;
	struct oci_platform host;
	oci_platform_host(&host);
	assert_int_equal(oci_index_select(doc, len, &host, &d, &err), -1);
	assert_non_null(strstr(err.msg, "index: more than 100000 values"));
	free(doc);
}

static void config_gives_diff_ids_and_run_settings(void **state)
{
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\","
			  "\"config\":{\"Entrypoint\":null,\"Cmd\":[\"/bin/sh\",\"-c\"],"
			  "\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\",\"User\":null},"
			  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D2 "\",\"" D3 "\"]}}";
	struct oci_config c;
	struct berr err;
	assert_int_equal(oci_config_parse(cfg, strlen(cfg), &c, &err), 0);
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1], D3);
	assert_null(c.entrypoint);
	assert_string_equal(c.cmd[1], "-c");
	assert_null(c.cmd[2]);
	assert_string_equal(c.env[0], "A=1");
	assert_string_equal(c.working_dir, "/w");
	assert_null(c.user);
	assert_string_equal(c.architecture, "amd64");
	oci_config_free(&c);
	const char *bare = "{\"config\":null,\"rootfs\":{\"diff_ids\":[]}}";
	assert_int_equal(oci_config_parse(bare, strlen(bare), &c, &err), 0);
	oci_config_free(&c);
}

static void config_with_a_bad_diff_id_is_refused(void **state)
{
	const char *cfg = "{\"rootfs\":{\"diff_ids\":[\"sha256:nothex\"]}}";
	struct oci_config c;
	struct berr err;
	assert_int_equal(oci_config_parse(cfg, strlen(cfg), &c, &err), -1);
	assert_non_null(strstr(err.msg, "config.rootfs.diff_ids[0]"));
	assert_int_equal(oci_config_parse("{}", 2, &c, &err), -1);
	assert_non_null(strstr(err.msg, "config.rootfs: required"));
}

/* ---- credentials for a pull ------------------------------------------------ */

static yajl_val parse(const char *json)
{
	yajl_val v;
	struct berr err;
	assert_int_equal(json_parse(json, strlen(json), 65536, "test", &v, &err), 0);
	return v;
}

static void config_registries_give_credentials_and_transport(void **state)
{
	yajl_val regs = parse("{\"127.0.0.1:5000\":{\"insecure\":true},"
			      "\"myacr.example.io\":{\"username\":\"u\",\"password\":\"p\","
			      "\"ca_file\":\"/etc/ca.pem\"}}");
	struct oci_pull_opts o = {0};
	struct berr err;
	assert_int_equal(oci_pull_opts_for("127.0.0.1:5000/app:1", regs, NULL, &o, &err), 0);
	assert_true(o.insecure);
	assert_null(o.username);
	struct oci_pull_opts o2 = {0};
	assert_int_equal(oci_pull_opts_for("myacr.example.io/team/app", regs, NULL, &o2, &err), 0);
	assert_false(o2.insecure);
	assert_string_equal(o2.username, "u");
	assert_string_equal(o2.password, "p");
	assert_string_equal(o2.ca_file, "/etc/ca.pem");
	yajl_tree_free(regs);
}

static void deployment_credentials_match_by_address(void **state)
{
	yajl_val creds = parse("{\"hub\":{\"username\":\"h\",\"password\":\"hp\","
			       "\"address\":\"index.docker.io\"},"
			       "\"acr\":{\"username\":\"a\",\"password\":\"ap\","
			       "\"address\":\"https://myacr.example.io/\"}}");
	struct oci_pull_opts o = {0};
	struct berr err;
	assert_int_equal(oci_pull_opts_for("myacr.example.io/app:1", NULL, creds, &o, &err), 0);
	assert_string_equal(o.username, "a");
	assert_string_equal(o.password, "ap");
	struct oci_pull_opts o2 = {0};
	assert_int_equal(oci_pull_opts_for("busybox", NULL, creds, &o2, &err), 0);
	assert_string_equal(o2.username, "h");
	struct oci_pull_opts o3 = {0};
	assert_int_equal(oci_pull_opts_for("other.example.io/app", NULL, creds, &o3, &err), 0);
	assert_null(o3.username);
	yajl_tree_free(creds);
}

static void given_credentials_win_over_config_and_deployment(void **state)
{
	yajl_val regs = parse("{\"r.example.io\":{\"username\":\"cfg\",\"password\":\"c\"}}");
	yajl_val creds =
	    parse("{\"x\":{\"username\":\"dep\",\"password\":\"d\",\"address\":\"r.example.io\"}}");
	struct oci_pull_opts o = {.username = "cli", .password = "x"};
	struct berr err;
	assert_int_equal(oci_pull_opts_for("r.example.io/a", regs, creds, &o, &err), 0);
	assert_string_equal(o.username, "cli");
	struct oci_pull_opts o2 = {0};
	assert_int_equal(oci_pull_opts_for("r.example.io/a", regs, creds, &o2, &err), 0);
	assert_string_equal(o2.username, "cfg");
	yajl_tree_free(regs);
	yajl_tree_free(creds);
}

static void malformed_credentials_are_refused_naming_the_entry(void **state)
{
	yajl_val creds = parse("{\"acr\":{\"username\":\"a\"}}");
	struct oci_pull_opts o = {0};
	struct berr err;
	assert_int_equal(oci_pull_opts_for("r.example.io/a", NULL, creds, &o, &err), -1);
	assert_non_null(strstr(err.msg, "registryCredentials.acr.address"));
	yajl_tree_free(creds);
	yajl_val regs = parse("{\"r.example.io\":{\"insecure\":\"yes\"}}");
	assert_int_equal(oci_pull_opts_for("r.example.io/a", regs, NULL, &o, &err), -1);
	assert_non_null(strstr(err.msg, "registries.r.example.io.insecure"));
	yajl_tree_free(regs);
}

/* ---- the store on disk ---------------------------------------------------- */

struct fixture {
	char root[64];
	struct oci_store *s;
};

static int store_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/berth-test-store-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	struct berr err;
	if (oci_store_open(f->root, &f->s, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int store_teardown(void **state)
{
	struct fixture *f = *state;
	struct berr err;
	oci_store_close(f->s);
	assert_int_equal(fs_remove_tree(f->root, &err), 0);
	free(f);
	return 0;
}

/* A one-layer image, written as a pull would leave it; returns its
 * manifest digest in out. */
static void add_image(struct fixture *f, const char *name, const char *file_in_layer,
		      char out[DIGEST_STR_MAX])
{
	char layer_raw[64], diff_id[DIGEST_STR_MAX], cfg[512], cfg_d[DIGEST_STR_MAX], man[1024];
	snprintf(layer_raw, sizeof(layer_raw), "layer of %s", name);
	digest_sha256(layer_raw, strlen(layer_raw), diff_id);
	snprintf(cfg, sizeof(cfg), "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
		 diff_id);
	digest_sha256(cfg, strlen(cfg), cfg_d);
	snprintf(man, sizeof(man),
		 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
		 "vnd.oci.image.config.v1+json\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":1}]}",
		 cfg_d, strlen(cfg), diff_id);
	digest_sha256(man, strlen(man), out);
	struct berr err;
	assert_int_equal(store_blob_write(f->s, cfg_d, cfg, strlen(cfg), &err), 0);
	assert_int_equal(store_blob_write(f->s, out, man, strlen(man), &err), 0);
	assert_int_equal(mkdirat(f->s->layers_fd, digest_hex(diff_id), 0755), 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", digest_hex(diff_id), file_in_layer);
	int fd = openat(f->s->layers_fd, path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct store_ref r = {.size = 1, .pulled = 1};
	snprintf(r.ref, sizeof(r.ref), "127.0.0.1:5000/%s:1", name);
	snprintf(r.digest, sizeof(r.digest), "%s", out);
	snprintf(r.manifest, sizeof(r.manifest), "%s", out);
	snprintf(r.config, sizeof(r.config), "%s", cfg_d);
	assert_int_equal(store_ref_write(f->s, &r, &err), 0);
}

static void open_creates_the_layout(void **state)
{
	struct fixture *f = *state;
	const char *dirs[] = {"oci/blobs/sha256", "oci/layers/sha256", "oci/refs", "oci/leases",
			      "oci/tmp"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char p[256];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", f->root, dirs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
}

static void open_clears_leftovers_of_killed_pulls(void **state)
{
	struct fixture *f = *state;
	char p[256];
	snprintf(p, sizeof(p), "%s/oci/tmp/pull-1-dead/layer/etc", f->root);
	struct berr err;
	assert_int_equal(fs_mkdir_p(p, 0755, &err), 0);
	struct oci_store *s2;
	assert_int_equal(oci_store_open(f->root, &s2, &err), 0);
	oci_store_close(s2);
	snprintf(p, sizeof(p), "%s/oci/tmp/pull-1-dead", f->root);
	assert_int_equal(access(p, F_OK), -1);
}

static void open_removes_half_written_blobs_tags_and_leases(void **state)
{
	struct fixture *f = *state;
	const char *left[] = {
	    "blobs/sha256/"
	    "1111111111111111111111111111111111111111111111111111111111111111.tmp42-43",
	    "refs/127.0.0.1%3A5000%2Fx%3A1.tmp7-7", "leases/web.tmp9-9"};
	for (size_t i = 0; i < 3; i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/oci/%s", f->root, left[i]);
		int fd = open(p, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	struct oci_store *s2;
	struct berr err;
	assert_int_equal(oci_store_open(f->root, &s2, &err), 0);
	oci_store_close(s2);
	for (size_t i = 0; i < 3; i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/oci/%s", f->root, left[i]);
		assert_int_equal(access(p, F_OK), -1);
	}
}

static void image_open_gives_layer_dirs_from_the_store(void **state)
{
	struct fixture *f = *state;
	char d[DIGEST_STR_MAX];
	add_image(f, "app", "hello", d);
	struct oci_image *img;
	struct berr err;
	assert_int_equal(oci_image_open(f->s, "127.0.0.1:5000/app:1", &img, &err), 0);
	assert_string_equal(img->digest, d);
	assert_int_equal(img->n_layers, 1);
	char p[512];
	snprintf(p, sizeof(p), "%s/hello", img->layer_dirs[0]);
	assert_int_equal(access(p, F_OK), 0);
	assert_string_equal(img->ref, "127.0.0.1:5000/app:1");
	oci_image_free(img);
	assert_int_equal(oci_image_open(f->s, d, &img, &err), 0);
	oci_image_free(img);
	assert_int_equal(oci_image_open(f->s, "127.0.0.1:5000/app:2", &img, &err), -1);
	assert_non_null(strstr(err.msg, "not in the store"));
}

static int listed;
static int count_image(const struct oci_image_info *info, void *ctx)
{
	(void)info;
	(void)ctx;
	listed++;
	return 0;
}

static void names_that_look_temporary_are_still_listed(void **state)
{
	struct fixture *f = *state;
	char d[DIGEST_STR_MAX];
	add_image(f, "a.tmp1", "x", d); /* a legal repository name */
	struct berr err;
	listed = 0;
	assert_int_equal(oci_image_list(f->s, count_image, NULL, &err), 0);
	assert_int_equal(listed, 1);
	struct oci_image *img;
	assert_int_equal(oci_image_open(f->s, "127.0.0.1:5000/a.tmp1:1", &img, &err), 0);
	assert_true(img->layer_dirs[0][0] == '/');
	oci_image_free(img);
}

static void tag(struct fixture *f, const char *ref)
{
	struct store_ref r = {.size = 1, .pulled = 1};
	snprintf(r.ref, sizeof(r.ref), "%s", ref);
	snprintf(r.digest, sizeof(r.digest), "%s", D1);
	snprintf(r.manifest, sizeof(r.manifest), "%s", D1);
	snprintf(r.config, sizeof(r.config), "%s", D2);
	struct berr err;
	if (store_ref_write(f->s, &r, &err) < 0)
		fail_msg("%s", err.msg);
}

/* "v1.tmp5-5" is a legal tag: its file must not pass for a write that a
 * killed process left behind. */
static void tag_that_looks_like_a_temporary_file_survives_reopening(void **state)
{
	struct fixture *f = *state;
	tag(f, "127.0.0.1:5000/app:v1.tmp5-5");
	struct oci_store *s2;
	struct berr err;
	assert_int_equal(oci_store_open(f->root, &s2, &err), 0);
	struct store_ref r;
	assert_int_equal(store_ref_read(s2, "127.0.0.1:5000/app:v1.tmp5-5", &r, &err), 1);
	listed = 0;
	assert_int_equal(oci_image_list(s2, count_image, NULL, &err), 0);
	assert_int_equal(listed, 1);
	oci_store_close(s2);
}

/* Every reference the parser takes can be tagged, however long. */
static void long_references_are_tagged(void **state)
{
	struct fixture *f = *state;
	char ref[REF_STR_MAX];
	/* encoded lengths around NAME_MAX, where the temporary name is longest */
	for (int path_len = 200; path_len <= 250; path_len++) {
		char path[256];
		memset(path, 'a', (size_t)path_len);
		path[path_len] = '\0';
		snprintf(ref, sizeof(ref), "r.io/%s:1", path);
		struct image_ref parsed;
		struct berr err;
		if (image_ref_parse(ref, &parsed, &err) < 0)
			continue;
		tag(f, ref);
		struct store_ref r;
		assert_int_equal(store_ref_read(f->s, ref, &r, &err), 1);
		assert_string_equal(r.ref, ref);
	}
}

static void lease_names_must_be_plain(void **state)
{
	struct fixture *f = *state;
	struct berr err;
	char d[DIGEST_STR_MAX];
	add_image(f, "a", "fa", d);
	assert_int_equal(oci_lease_add(f->s, "../x", d, &err), -1);
	assert_int_equal(oci_lease_add(f->s, ".hidden", d, &err), -1);
	assert_int_equal(oci_lease_add(f->s, "ok", "sha256:short", &err), -1);
	/* gc takes such a name for a lease being written, and skips it */
	assert_int_equal(oci_lease_add(f->s, "web.tmp1-2", d, &err), -1);
	assert_int_equal(oci_lease_add(f->s, "ok", d, &err), 0);
	assert_int_equal(oci_lease_remove(f->s, "ok", &err), 0);
	assert_int_equal(oci_lease_remove(f->s, "ok", &err), 0); /* already gone is fine */
}

/* The window between opening an image and leasing it: a gc in between
 * removes the layers, and the lease must then fail rather than protect
 * nothing. */
static int count;
static void counted(const char *what, uint64_t bytes, void *ctx);

static void lease_of_an_image_collected_after_it_was_opened_fails(void **state)
{
	struct fixture *f = *state;
	char a[DIGEST_STR_MAX];
	add_image(f, "a", "fa", a);
	struct berr err;
	struct oci_image *img;
	assert_int_equal(oci_image_open(f->s, a, &img, &err), 0);
	assert_int_equal(oci_untag(f->s, "127.0.0.1:5000/a:1", NULL, NULL, &err), 0);
	uint64_t freed;
	assert_int_equal(oci_gc(f->s, counted, NULL, &freed, &err), 0);
	assert_int_equal(oci_lease_add(f->s, "web", img->digest, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(err.msg, "lease web: the image was removed"));
	assert_int_equal(oci_lease_add_ephemeral(f->s, "web", img->digest, &err), -1);
	assert_int_equal(faccessat(f->s->leases_fd, "web", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	oci_image_free(img);
}

static void counted(const char *what, uint64_t bytes, void *ctx)
{
	(void)what;
	(void)bytes;
	(void)ctx;
	count++;
}

static void gc_keeps_tagged_and_leased_images_only(void **state)
{
	struct fixture *f = *state;
	char a[DIGEST_STR_MAX], b[DIGEST_STR_MAX], c[DIGEST_STR_MAX];
	add_image(f, "a", "fa", a);
	add_image(f, "b", "fb", b);
	add_image(f, "c", "fc", c);
	struct berr err;
	assert_int_equal(oci_untag(f->s, "127.0.0.1:5000/b:1", NULL, NULL, &err), 0);
	assert_int_equal(oci_untag(f->s, "127.0.0.1:5000/c:1", NULL, NULL, &err), 0);
	assert_int_equal(oci_lease_add(f->s, "instance-c", c, &err), 0);
	uint64_t freed;
	count = 0;
	assert_int_equal(oci_gc(f->s, counted, NULL, &freed, &err), 0);
	assert_int_equal(count, 3); /* b's layer, manifest and config */
	struct oci_image *img;
	assert_int_equal(oci_image_open(f->s, a, &img, &err), 0);
	oci_image_free(img);
	assert_int_equal(oci_image_open(f->s, c, &img, &err), 0);
	oci_image_free(img);
	assert_int_equal(oci_image_open(f->s, b, &img, &err), -1);
	assert_int_equal(oci_lease_remove(f->s, "instance-c", &err), 0);
	count = 0;
	assert_int_equal(oci_gc(f->s, counted, NULL, &freed, &err), 0);
	assert_int_equal(count, 3);
}

/* A killed writer leaves "<name>.tmp<pid>-<tid>" with a partial digest while
 * another process has the store open: gc skips it rather than failing. */
static void gc_skips_a_half_written_lease(void **state)
{
	struct fixture *f = *state;
	char a[DIGEST_STR_MAX];
	add_image(f, "a", "fa", a);
	struct berr err;
	assert_int_equal(oci_untag(f->s, "127.0.0.1:5000/a:1", NULL, NULL, &err), 0);
	int fd = openat(f->s->leases_fd, "web.tmp123-124", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "sha256:12", 9), 9);
	close(fd);
	uint64_t freed;
	count = 0;
	assert_int_equal(oci_gc(f->s, counted, NULL, &freed, &err), 0);
	assert_int_equal(count, 3); /* the untagged image went all the same */
}

static void untag_of_a_missing_ref_fails(void **state)
{
	struct fixture *f = *state;
	struct berr err;
	assert_int_equal(oci_untag(f->s, "127.0.0.1:5000/none:1", NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "not in the store"));
	assert_int_equal(oci_untag(f->s, D1, NULL, NULL, &err), -1);
}

static void corrupt_blobs_are_detected_on_read(void **state)
{
	struct fixture *f = *state;
	char d[DIGEST_STR_MAX];
	add_image(f, "corrupt", "x", d);
	int fd = openat(f->s->blobs_fd, digest_hex(d), O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, " ", 1), 1);
	close(fd);
	struct oci_image *img;
	struct berr err;
	assert_int_equal(oci_image_open(f->s, "127.0.0.1:5000/corrupt:1", &img, &err), -1);
	assert_non_null(strstr(err.msg, "store corrupt"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(document_kind_comes_from_content_type_then_body),
	    cmocka_unit_test(platform_strings_parse),
	    cmocka_unit_test(platform_matching_prefers_exact_variants),
	    cmocka_unit_test(index_selection_skips_unknown_media_types),
	    cmocka_unit_test(index_without_the_platform_lists_what_it_has),
	    cmocka_unit_test(manifest_layers_carry_their_compression),
	    cmocka_unit_test(bad_manifests_are_refused_naming_the_field),
	    cmocka_unit_test(documents_with_too_many_values_are_refused_before_parsing),
	    cmocka_unit_test(config_gives_diff_ids_and_run_settings),
	    cmocka_unit_test(config_with_a_bad_diff_id_is_refused),
	    cmocka_unit_test(config_registries_give_credentials_and_transport),
	    cmocka_unit_test(deployment_credentials_match_by_address),
	    cmocka_unit_test(given_credentials_win_over_config_and_deployment),
	    cmocka_unit_test(malformed_credentials_are_refused_naming_the_entry),
	    cmocka_unit_test_setup_teardown(open_creates_the_layout, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(open_clears_leftovers_of_killed_pulls, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(open_removes_half_written_blobs_tags_and_leases,
					    store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(image_open_gives_layer_dirs_from_the_store, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(names_that_look_temporary_are_still_listed, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(tag_that_looks_like_a_temporary_file_survives_reopening,
					    store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(long_references_are_tagged, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(lease_names_must_be_plain, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(lease_of_an_image_collected_after_it_was_opened_fails,
					    store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(gc_keeps_tagged_and_leased_images_only, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(gc_skips_a_half_written_lease, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(untag_of_a_missing_ref_fails, store_setup,
					    store_teardown),
	    cmocka_unit_test_setup_teardown(corrupt_blobs_are_detected_on_read, store_setup,
					    store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
