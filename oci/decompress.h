/* Private to oci/: streaming decompression of layer blobs: gzip (with
 * ISA-L's igzip where the library is there, zlib otherwise), zstd, or none.
 * Input is pulled from a reader, output pulled by the caller, so one thread
 * can download, decompress and unpack a layer with bounded buffers. */
#ifndef BERTH_OCI_DECOMPRESS_H
#define BERTH_OCI_DECOMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"
#include "oci/manifest.h"

struct decomp_input {
	/* Up to len bytes into buf; 0 at the end; -1 with err on failure. */
	ssize_t (*read)(void *ctx, void *buf, size_t len, struct berr *err);
	void *ctx;
};

enum decomp_flags {
	DECOMP_NO_ISAL = 1, /* gzip through zlib even when ISA-L is there */
};

struct decomp;

NODISCARD int decomp_open(enum oci_compression c, const struct decomp_input *in, unsigned flags,
			  struct decomp **out, struct berr *err);
/* Up to len bytes of output; 0 once the input ended cleanly (all gzip
 * members or zstd frames complete); -1 with err on bad or truncated data or
 * when the input failed. */
NODISCARD ssize_t decomp_read(struct decomp *d, void *buf, size_t len, struct berr *err);
/* True when the last failure came from the data, not from the input. */
bool decomp_data_error(const struct decomp *d);
/* "igzip", "zlib", "zstd" or "none". */
const char *decomp_engine(const struct decomp *d);
void decomp_close(struct decomp *d);

#endif
