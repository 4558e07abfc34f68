/* berth export REF DIR: an image's flattened root filesystem, as
 * `umoci unpack` writes it into a bundle's rootfs (hardlinks kept). */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/command.h"
#include "oci/layer.h"
#include "oci/oci.h"

static int cmd_export(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc != 3 || argv[1][0] == '-')
		return berth_usage("export");
	const char *ref = argv[1], *dir = argv[2];
	struct berr err;
	struct oci_store *s;
	if (oci_store_open(ctx->root, &s, &err) < 0) {
		fprintf(stderr, "berth: export %s: %s\n", ref, err.msg);
		return 1;
	}
	struct oci_image *img;
	int ret = oci_image_open(s, ref, &img, &err);
	if (ret == 0) {
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			ret = berr_set(&err, errno, "create %s", dir);
		else
			ret = layer_flatten((const char *const *)img->layer_dirs, img->n_layers,
					    dir, &err);
		oci_image_free(img);
	}
	oci_store_close(s);
	if (ret < 0) {
		fprintf(stderr, "berth: export %s: %s\n", ref, err.msg);
		return 1;
	}
	return 0;
}
BERTH_COMMAND(export, "export REF DIR",
	      "write an image's flattened root filesystem into DIR (new or empty)", cmd_export);
