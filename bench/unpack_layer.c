/* Unpacks one uncompressed layer tar (a file) into an empty directory with
 * layer_unpack, as berth pull does after decompressing: the unpacking half
 * of a pull, measured on its own by bench/unpack.sh.
 *
 *   unpack_layer LAYER.tar DIR */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "oci/layer.h"

static ssize_t file_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	ssize_t n;
	do
		n = read(*(int *)ctx, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return berr_set(err, errno, "read");
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: unpack_layer LAYER.tar DIR\n");
		return 2;
	}
	int in = open(argv[1], O_RDONLY | O_CLOEXEC);
	int dir = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (in < 0 || dir < 0) {
		fprintf(stderr, "unpack_layer: %s\n", strerror(errno));
		return 1;
	}
	struct layer_source src = {file_read, &in};
	struct layer_stats stats;
	struct berr err;
	if (layer_unpack(dir, &src, argv[1], &stats, &err) < 0) {
		fprintf(stderr, "unpack_layer: %s\n", err.msg);
		return 1;
	}
	/* berth pull syncs each layer's file system once before publishing it. */
	if (syncfs(dir) < 0) {
		fprintf(stderr, "unpack_layer: syncfs: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
