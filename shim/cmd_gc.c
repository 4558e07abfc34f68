/* berth gc: what killed foreground runs left (shim/), then the layers and
 * blobs no image and no instance uses (oci/). It lives here, above both. */
#include <stdio.h>
#include <string.h>

#include "common/command.h"
#include "common/format.h"
#include "oci/oci.h"
#include "shim/shim.h"

struct gc_counts {
	size_t layers, blobs;
};

static void print_removed(const char *what, uint64_t bytes, void *ctx)
{
	struct gc_counts *c = ctx;
	char size[32];
	format_size(bytes, size, sizeof(size));
	printf("removed %s (%s)\n", what, size);
	if (!strncmp(what, "layer", 5))
		c->layers++;
	else
		c->blobs++;
}

static void drop_leftover(const char *name, void *ctx)
{
	struct berr err;
	printf("removed what a killed run of instance %s left\n", name);
	if (oci_lease_remove(ctx, name, &err) < 0)
		fprintf(stderr, "berth: gc: %s\n", err.msg);
}

static int cmd_gc(struct berth_ctx *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return berth_usage("gc");
	struct oci_store *s;
	struct berr err;
	if (oci_store_open(ctx->root, &s, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 1;
	}
	struct gc_counts counts = {0, 0};
	uint64_t freed = 0;
	/* What killed foreground runs left holds leases: it goes first. */
	if (shim_reclaim_all(ctx->root, drop_leftover, s, &err) < 0)
		fprintf(stderr, "berth: gc: %s\n", err.msg);
	int ret = oci_gc(s, print_removed, &counts, &freed, &err);
	oci_store_close(s);
	char size[32];
	format_size(freed, size, sizeof(size));
	printf("freed %s (%zu layers, %zu blobs)\n", size, counts.layers, counts.blobs);
	if (ret < 0) {
		fprintf(stderr, "berth: gc: %s\n", err.msg);
		return 1;
	}
	return 0;
}
BERTH_COMMAND(gc, "gc", "remove layers and blobs that no image or instance uses", cmd_gc);
