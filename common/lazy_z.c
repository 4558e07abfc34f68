/* zlib, loaded on first use (see common/lazy.h): gzip layers only. */
#include <zlib.h>

#include "common/lazy.h"

LAZY_FN(LAZY_Z, int, inflateInit2_,
	(z_streamp strm, int window_bits, const char *version, int stream_size),
	(strm, window_bits, version, stream_size))
LAZY_FN(LAZY_Z, int, inflate, (z_streamp strm, int flush), (strm, flush))
LAZY_FN(LAZY_Z, int, inflateReset, (z_streamp strm), (strm))
LAZY_FN(LAZY_Z, int, inflateEnd, (z_streamp strm), (strm))
