/* libm, loaded on first use (see common/lazy.h): only the route functions
 * power, exp and sqrt and the % operator need it. */
#include <math.h>

#include "common/lazy.h"

LAZY_FN(LAZY_M, double, pow, (double x, double y), (x, y))
LAZY_FN(LAZY_M, double, exp, (double x), (x))
LAZY_FN(LAZY_M, double, sqrt, (double x), (x))
LAZY_FN(LAZY_M, double, fmod, (double x, double y), (x, y))
/* Inlined as instructions on x86-64 and arm64; calls into libm on 32-bit ARM. */
LAZY_FN(LAZY_M, double, ceil, (double x), (x))
LAZY_FN(LAZY_M, double, floor, (double x), (x))
