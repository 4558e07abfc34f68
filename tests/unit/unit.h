/* Common includes for cmocka unit tests. */
#ifndef BERTH_TEST_UNIT_H
#define BERTH_TEST_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#endif
