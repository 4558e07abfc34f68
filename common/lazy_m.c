/* libm, loaded on first use (see common/lazy.h): only the route functions
 * power, exp and sqrt and the % operator need it. */
#include <math.h>

#include "common/lazy.h"

LAZY_FN(LAZY_M, double, pow, (double x, double y), (x, y))
LAZY_FN(LAZY_M, double, exp, (double x), (x))
LAZY_FN(LAZY_M, double, sqrt, (double x), (x))
LAZY_FN(LAZY_M, double, fmod, (double x, double y), (x, y))
