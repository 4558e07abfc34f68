/* libzstd, loaded on first use (see common/lazy.h): zstd layers only. */
#include <zstd.h>

#include "common/lazy.h"

LAZY_FN(LAZY_ZSTD, ZSTD_DCtx *, ZSTD_createDCtx, (void), ())
LAZY_FN(LAZY_ZSTD, size_t, ZSTD_freeDCtx, (ZSTD_DCtx * dctx), (dctx))
LAZY_FN(LAZY_ZSTD, size_t, ZSTD_DCtx_setParameter,
	(ZSTD_DCtx * dctx, ZSTD_dParameter param, int value), (dctx, param, value))
LAZY_FN(LAZY_ZSTD, size_t, ZSTD_decompressStream,
	(ZSTD_DStream * zds, ZSTD_outBuffer *output, ZSTD_inBuffer *input), (zds, output, input))
LAZY_FN(LAZY_ZSTD, unsigned, ZSTD_isError, (size_t code), (code))
LAZY_FN(LAZY_ZSTD, const char *, ZSTD_getErrorName, (size_t code), (code))
