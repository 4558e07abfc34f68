/* libcap, loaded on first use (see common/lazy.h): capability names and an
 * instance's capability sets. */
#include <sys/capability.h>

#include "common/lazy.h"

LAZY_FN(LAZY_CAP, int, cap_free, (void *obj), (obj))
LAZY_FN(LAZY_CAP, int, cap_from_name, (const char *name, cap_value_t *value), (name, value))
LAZY_FN(LAZY_CAP, char *, cap_to_name, (cap_value_t cap), (cap))
LAZY_FN(LAZY_CAP, cap_t, cap_init, (void), ())
LAZY_FN(LAZY_CAP, cap_t, cap_get_proc, (void), ())
LAZY_FN(LAZY_CAP, int, cap_set_proc, (cap_t caps), (caps))
LAZY_FN(LAZY_CAP, int, cap_get_flag,
	(cap_t caps, cap_value_t cap, cap_flag_t flag, cap_flag_value_t *value),
	(caps, cap, flag, value))
LAZY_FN(LAZY_CAP, int, cap_set_flag,
	(cap_t caps, cap_flag_t flag, int ncap, const cap_value_t *list, cap_flag_value_t value),
	(caps, flag, ncap, list, value))
