/* berth pull, images, rmi, inspect. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/command.h"
#include "common/format.h"
#include "common/json.h"
#include "oci/oci.h"
#include "registry/registry.h"

#define CONFIG_FILE_MAX (1u << 20)

static int open_store(struct berth_ctx *ctx, struct oci_store **s)
{
	struct berr err;
	if (oci_store_open(ctx->root, s, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Applies the daemon config's registries.<host> entry to opts. Strings
 * point into *doc, which the caller frees. */
static int apply_config(const char *file, const char *ref, struct oci_pull_opts *opts,
			yajl_val *doc, struct berr *err)
{
	if (json_parse_file(file, CONFIG_FILE_MAX, doc, err) < 0)
		return berr_wrap(err, "config %s", file);
	yajl_val regs;
	if (json_get_obj(*doc, "registries", "config", false, &regs, err) < 0 ||
	    oci_pull_opts_for(ref, regs, NULL, opts, err) < 0)
		return berr_wrap(err, "config %s", file);
	return 0;
}

static int cmd_pull(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"insecure", no_argument, NULL, 'k'},	{"platform", required_argument, NULL, 'p'},
	    {"config", required_argument, NULL, 'c'},	{"username", required_argument, NULL, 'u'},
	    {"password", required_argument, NULL, 'P'}, {"password-stdin", no_argument, NULL, 'S'},
	    {"ca-file", required_argument, NULL, 'C'},	{"timeout", required_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},		{NULL, 0, NULL, 0}};
	struct oci_pull_opts opts = {.progress = true};
	const char *config = NULL;
	bool password_stdin = false;
	char password[1024];
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+q", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			opts.insecure = true;
			break;
		case 'p':
			opts.platform = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'u':
			opts.username = optarg;
			break;
		case 'S':
			password_stdin = true;
			break;
		case 'P':
			opts.password = optarg;
			break;
		case 'C':
			opts.ca_file = optarg;
			break;
		case 'q':
			opts.progress = false;
			break;
		case 't':
			opts.timeout = atoi(optarg);
			if (opts.timeout <= 0 || opts.timeout > 3600) {
				fprintf(stderr, "berth: pull: --timeout wants 1..3600 seconds\n");
				return 2;
			}
			break;
		default:
			return berth_usage("pull");
		}
	}
	if (optind != argc - 1)
		return berth_usage("pull");
	const char *ref = argv[optind];
	if (password_stdin) {
		/* Keeps the password out of the process list. */
		if (!fgets(password, sizeof(password), stdin)) {
			fprintf(stderr, "berth: pull: no password on standard input\n");
			return 2;
		}
		password[strcspn(password, "\r\n")] = '\0';
		opts.password = password;
	}
	if (opts.username && !opts.password) {
		fprintf(stderr, "berth: pull: --username needs --password\n");
		return 2;
	}
	struct berr err;
	cleanup_yajl yajl_val doc = NULL;
	if (config && apply_config(config, ref, &opts, &doc, &err) < 0) {
		fprintf(stderr, "berth: pull %s: %s\n", ref, err.msg);
		return 1;
	}
	struct oci_store *s;
	if (open_store(ctx, &s) < 0)
		return 1;
	char digest[DIGEST_STR_MAX];
	int ret = oci_pull(s, ref, &opts, digest, &err);
	oci_store_close(s);
	if (ret < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	printf("%s\n", digest);
	return 0;
}
BERTH_COMMAND(
    pull,
    "pull [--insecure] [--platform OS/ARCH[/VARIANT]] [--config FILE] "
    "[--username U (--password P | --password-stdin)] [--ca-file FILE] [--timeout S] [--quiet] REF",
    "pull an image from a registry", cmd_pull);

static void human_ago(int64_t when, char *out, size_t cap)
{
	int64_t d = (int64_t)time(NULL) - when;
	if (d < 0)
		d = 0;
	if (d < 60)
		snprintf(out, cap, "%lld seconds ago", (long long)d);
	else if (d < 3600)
		snprintf(out, cap, "%lld minutes ago", (long long)(d / 60));
	else if (d < 86400 * 2)
		snprintf(out, cap, "%lld hours ago", (long long)(d / 3600));
	else
		snprintf(out, cap, "%lld days ago", (long long)(d / 86400));
}

static int print_image(const struct oci_image_info *info, void *ctx)
{
	(void)ctx;
	struct image_ref r;
	struct berr err;
	if (image_ref_parse(info->ref, &r, &err) < 0)
		return 0;
	char repo[REF_DOMAIN_MAX + REF_PATH_MAX + 2], size[32], ago[48];
	snprintf(repo, sizeof(repo), "%s/%s", r.domain, r.path);
	format_size(info->size, size, sizeof(size));
	human_ago(info->pulled, ago, sizeof(ago));
	printf("%-40s %-16s %-12.12s %-10s %s\n", repo, r.tag[0] ? r.tag : "<none>",
	       digest_hex(info->digest), size, ago);
	return 0;
}

static int cmd_images(struct berth_ctx *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return berth_usage("images");
	struct oci_store *s;
	if (open_store(ctx, &s) < 0)
		return 1;
	printf("%-40s %-16s %-12s %-10s %s\n", "REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED");
	struct berr err;
	int ret = oci_image_list(s, print_image, NULL, &err);
	oci_store_close(s);
	if (ret < 0) {
		fprintf(stderr, "berth: images: %s\n", err.msg);
		return 1;
	}
	return 0;
}
BERTH_COMMAND(images, "images", "list the images in the store", cmd_images);

static void print_untagged(const char *ref, void *ctx)
{
	(void)ctx;
	printf("untagged: %s\n", ref);
}

static int cmd_rmi(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc < 2)
		return berth_usage("rmi");
	struct oci_store *s;
	if (open_store(ctx, &s) < 0)
		return 1;
	int status = 0;
	for (int i = 1; i < argc; i++) {
		struct berr err;
		if (oci_untag(s, argv[i], print_untagged, NULL, &err) < 0) {
			fprintf(stderr, "berth: rmi %s: %s\n", argv[i], err.msg);
			status = 1;
		}
	}
	oci_store_close(s);
	return status;
}
BERTH_COMMAND(rmi, "rmi REF...",
	      "remove image tags (their content goes with the next gc unless in use)", cmd_rmi);

static void gen_strv(yajl_gen g, const char *key, char **v)
{
	json_gen_str(g, key);
	if (!v) {
		yajl_gen_null(g);
		return;
	}
	yajl_gen_array_open(g);
	for (size_t i = 0; v[i]; i++)
		json_gen_str(g, v[i]);
	yajl_gen_array_close(g);
}

/* What an instance would get from oci_image_open(), as JSON. */
static int cmd_inspect(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc != 2)
		return berth_usage("inspect");
	struct oci_store *s;
	if (open_store(ctx, &s) < 0)
		return 1;
	struct oci_image *img;
	struct berr err;
	int ret = oci_image_open(s, argv[1], &img, &err);
	oci_store_close(s);
	if (ret < 0) {
		fprintf(stderr, "berth: inspect: %s\n", err.msg);
		return 1;
	}
	yajl_gen g = json_gen_new(true);
	yajl_gen_map_open(g);
	json_gen_key_str(g, "ref", img->ref);
	json_gen_key_str(g, "digest", img->digest);
	json_gen_str(g, "layers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < img->n_layers; i++)
		json_gen_str(g, img->layer_dirs[i]);
	yajl_gen_array_close(g);
	gen_strv(g, "entrypoint", img->entrypoint);
	gen_strv(g, "cmd", img->cmd);
	gen_strv(g, "env", img->env);
	json_gen_key_str(g, "working_dir", img->working_dir);
	json_gen_key_str(g, "user", img->user);
	json_gen_key_str(g, "os", img->os);
	json_gen_key_str(g, "architecture", img->architecture);
	yajl_gen_map_close(g);
	oci_image_free(img);
	size_t len;
	char *out = json_gen_done(g, &len);
	if (!out) {
		fprintf(stderr, "berth: inspect: out of memory\n");
		return 1;
	}
	printf("%s\n", out);
	free(out);
	return 0;
}
BERTH_COMMAND(inspect, "inspect REF", "show an image in the store as an instance would get it",
	      cmd_inspect);
