/* Layer blobs as a registry may send them: gzip (igzip and zlib must agree
 * whenever both accept the data) and zstd, read in uneven pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/decompress.h"

struct mem {
	const uint8_t *p;
	size_t len, pos;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	(void)err;
	struct mem *m = ctx;
	size_t n = m->len - m->pos;
	if (n > len)
		n = len;
	if (n > 1000)
		n = 1000; /* cross the engines' buffer edges often */
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* Decompresses up to 8 MiB; returns the output or NULL when refused. */
static uint8_t *run(enum oci_compression c, unsigned flags, const uint8_t *data, size_t size,
		    size_t *out_len)
{
	struct mem m = {data, size, 0};
	struct decomp_input in = {mem_read, &m};
	struct decomp *d;
	struct berr err;
	if (decomp_open(c, &in, flags, &d, &err) < 0)
		abort();
	size_t cap = 1 << 16, n = 0;
	uint8_t *out = malloc(cap);
	for (;;) {
		if (n + 4096 > cap) {
			if (cap >= (8u << 20))
				break;
			out = realloc(out, cap *= 2);
		}
		ssize_t r = decomp_read(d, out + n, 4096, &err);
		if (r < 0) {
			free(out);
			out = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	decomp_close(d);
	*out_len = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t za, zb, zc;
	uint8_t *a = run(OCI_COMP_GZIP, DECOMP_NO_ISAL, data, size, &za);
	uint8_t *b = run(OCI_COMP_GZIP, 0, data, size, &zb);
	if (a && b && (za != zb || memcmp(a, b, za)))
		abort();
	uint8_t *c = run(OCI_COMP_ZSTD, 0, data, size, &zc);
	free(a);
	free(b);
	free(c);
	return 0;
}
