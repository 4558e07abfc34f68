/* ISA-L's igzip, loaded on first use (see common/lazy.h) when the build
 * found it: the fast path for gzip layers. */
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>

#include "common/lazy.h"

LAZY_VOID_FN(LAZY_ISAL, isal_inflate_init, (struct inflate_state * state), (state))
LAZY_VOID_FN(LAZY_ISAL, isal_inflate_reset, (struct inflate_state * state), (state))
LAZY_FN(LAZY_ISAL, int, isal_inflate, (struct inflate_state * state), (state))
#endif
