#include "oci/decompress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "common/lazy.h"

#define IN_BUF		    (32u << 10)
#define ZSTD_WINDOW_LOG_MAX 27 /* zstd's own default limit (128 MiB) */

enum engine { ENGINE_NONE, ENGINE_ZLIB, ENGINE_ISAL, ENGINE_ZSTD };

struct decomp {
	enum engine engine;
	struct decomp_input in;
	unsigned char *buf; /* compressed input */
	size_t pos, len;
	bool in_eof;
	bool member_end; /* gzip: a member ended, another may follow */
	bool data_error;
	z_stream z;
	bool z_ready;
#ifdef HAVE_ISAL
	struct inflate_state *isal;
#endif
	ZSTD_DCtx *zd;
	size_t zret;
};

static int fill(struct decomp *d, struct berr *err)
{
	ssize_t n = d->in.read(d->in.ctx, d->buf, IN_BUF, err);
	if (n < 0)
		return -1;
	if (n == 0)
		d->in_eof = true;
	d->pos = 0;
	d->len = (size_t)n;
	return 0;
}

/* Bad data (not a failed input): "<what> stream is <how>". */
static ssize_t data_error(struct decomp *d, struct berr *err, const char *what, const char *how)
{
	d->data_error = true;
	return berr_set(err, 0, "%s stream is %s", what, how);
}

/* Input for a gzip decoder, across the members a gzip stream may hold:
 * 1 to go on, 2 when another member starts (the decoder starts again), 0
 * at the end of the stream, -1 with err. */
static int gzip_input(struct decomp *d, struct berr *err)
{
	for (;;) {
		if (d->pos == d->len && !d->in_eof && fill(d, err) < 0)
			return -1;
		if (!d->member_end)
			return 1;
		if (d->pos < d->len) {
			d->member_end = false;
			return 2;
		}
		if (d->in_eof)
			return 0;
	}
}

static ssize_t read_zlib(struct decomp *d, void *buf, size_t len, struct berr *err)
{
	for (;;) {
		int in = gzip_input(d, err);
		if (in <= 0)
			return in;
		if (in == 2)
			LAZY(inflateReset)(&d->z);
		d->z.next_in = d->buf + d->pos;
		d->z.avail_in = (uInt)(d->len - d->pos);
		d->z.next_out = buf;
		d->z.avail_out = (uInt)(len > (1u << 30) ? (1u << 30) : len);
		uInt before = d->z.avail_out;
		int rc = LAZY(inflate)(&d->z, Z_NO_FLUSH);
		d->pos = d->len - d->z.avail_in;
		size_t produced = before - d->z.avail_out;
		if (rc == Z_STREAM_END)
			d->member_end = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			char how[160];
			snprintf(how, sizeof(how), "corrupt: %s",
				 d->z.msg ? d->z.msg : "inflate failed");
			return data_error(d, err, "gzip", how);
		}
		if (produced)
			return (ssize_t)produced;
		if (d->pos == d->len && d->in_eof && !d->member_end)
			return data_error(d, err, "gzip", "truncated");
	}
}

#ifdef HAVE_ISAL
static const char *isal_error(int rc)
{
	switch (rc) {
	case ISAL_INVALID_BLOCK:
		return "corrupt: invalid deflate block";
	case ISAL_INVALID_SYMBOL:
		return "corrupt: invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK:
		return "corrupt: invalid lookback distance";
	case ISAL_INVALID_WRAPPER:
		return "corrupt: invalid gzip header";
	case ISAL_UNSUPPORTED_METHOD:
		return "corrupt: unsupported compression method";
	case ISAL_INCORRECT_CHECKSUM:
		return "corrupt: incorrect data check";
	default:
		return "corrupt";
	}
}

static ssize_t read_isal(struct decomp *d, void *buf, size_t len, struct berr *err)
{
	struct inflate_state *s = d->isal;
	for (;;) {
		int in = gzip_input(d, err);
		if (in <= 0)
			return in;
		if (in == 2) {
			LAZY(isal_inflate_reset)(s);
			s->crc_flag = ISAL_GZIP;
		}
		s->next_in = d->buf + d->pos;
		s->avail_in = (uint32_t)(d->len - d->pos);
		s->next_out = buf;
		s->avail_out = (uint32_t)(len > (1u << 30) ? (1u << 30) : len);
		uint32_t before = s->avail_out;
		int rc = LAZY(isal_inflate)(s);
		/* At the end of a member igzip hands back what it read ahead. */
		d->pos = d->len - s->avail_in;
		size_t produced = before - s->avail_out;
		if (rc < 0)
			return data_error(d, err, "gzip", isal_error(rc));
		if (s->block_state == ISAL_BLOCK_FINISH)
			d->member_end = true;
		if (produced)
			return (ssize_t)produced;
		if (d->pos == d->len && d->in_eof && !d->member_end)
			return data_error(d, err, "gzip", "truncated");
	}
}
#endif

static ssize_t read_zstd(struct decomp *d, void *buf, size_t len, struct berr *err)
{
	for (;;) {
		if (d->pos == d->len && !d->in_eof && fill(d, err) < 0)
			return -1;
		/* A finished frame at the end of the input is the clean end. */
		if (d->pos == d->len && d->in_eof && d->zret == 0)
			return 0;
		ZSTD_inBuffer in = {d->buf, d->len, d->pos};
		ZSTD_outBuffer out = {buf, len, 0};
		size_t ret = LAZY(ZSTD_decompressStream)(d->zd, &out, &in);
		d->pos = in.pos;
		if (LAZY(ZSTD_isError)(ret)) {
			char how[160];
			snprintf(how, sizeof(how), "corrupt: %s", LAZY(ZSTD_getErrorName)(ret));
			return data_error(d, err, "zstd", how);
		}
		d->zret = ret;
		if (out.pos)
			return (ssize_t)out.pos;
		if (d->pos == d->len && d->in_eof && d->zret != 0)
			return data_error(d, err, "zstd", "truncated");
	}
}

int decomp_open(enum oci_compression c, const struct decomp_input *in, unsigned flags,
		struct decomp **out, struct berr *err)
{
	*out = NULL;
	struct decomp *d = calloc(1, sizeof(*d));
	if (!d)
		return berr_set(err, ENOMEM, "decompressor");
	d->in = *in;
	if (c == OCI_COMP_NONE) {
		d->engine = ENGINE_NONE;
		*out = d;
		return 0;
	}
	if (!(d->buf = malloc(IN_BUF))) {
		decomp_close(d);
		return berr_set(err, ENOMEM, "decompressor");
	}
	if (c == OCI_COMP_ZSTD) {
		d->engine = ENGINE_ZSTD;
		if (lazy_require(LAZY_ZSTD, err) < 0) {
			decomp_close(d);
			return -1;
		}
		if (!(d->zd = LAZY(ZSTD_createDCtx)())) {
			decomp_close(d);
			return berr_set(err, ENOMEM, "zstd");
		}
		LAZY(ZSTD_DCtx_setParameter)(d->zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
		d->zret = 1; /* nothing decoded yet: an empty stream is truncated */
		*out = d;
		return 0;
	}
#ifdef HAVE_ISAL
	/* igzip inflates about twice as fast as zlib; without the library
	 * (or on machines it does not support) zlib does the work. */
	struct berr ignored;
	if (!(flags & DECOMP_NO_ISAL) && lazy_require(LAZY_ISAL, &ignored) == 0 &&
	    (d->isal = malloc(sizeof(*d->isal)))) {
		LAZY(isal_inflate_init)(d->isal);
		d->isal->crc_flag = ISAL_GZIP;
		d->engine = ENGINE_ISAL;
		*out = d;
		return 0;
	}
#endif
	(void)flags;
	d->engine = ENGINE_ZLIB;
	if (lazy_require(LAZY_Z, err) < 0) {
		decomp_close(d);
		return -1;
	}
	/* 16 + 15: gzip wrapper, largest window */
	if (LAZY(inflateInit2_)(&d->z, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof(d->z)) != Z_OK) {
		decomp_close(d);
		return berr_set(err, ENOMEM, "gzip");
	}
	d->z_ready = true;
	*out = d;
	return 0;
}

ssize_t decomp_read(struct decomp *d, void *buf, size_t len, struct berr *err)
{
	if (len == 0)
		return 0;
	switch (d->engine) {
	case ENGINE_ZLIB:
		return read_zlib(d, buf, len, err);
#ifdef HAVE_ISAL
	case ENGINE_ISAL:
		return read_isal(d, buf, len, err);
#endif
	case ENGINE_ZSTD:
		return read_zstd(d, buf, len, err);
	default:
		return d->in.read(d->in.ctx, buf, len, err);
	}
}

bool decomp_data_error(const struct decomp *d)
{
	return d->data_error;
}

const char *decomp_engine(const struct decomp *d)
{
	static const char *const names[] = {"none", "zlib", "igzip", "zstd"};
	return names[d->engine];
}

void decomp_close(struct decomp *d)
{
	if (!d)
		return;
	if (d->z_ready)
		LAZY(inflateEnd)(&d->z);
#ifdef HAVE_ISAL
	free(d->isal);
#endif
	if (d->zd)
		LAZY(ZSTD_freeDCtx)(d->zd);
	free(d->buf);
	free(d);
}
