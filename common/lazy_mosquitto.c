/* libmosquitto, loaded on first use (see common/lazy.h). */
#include <mosquitto.h>

#include "common/lazy.h"

LAZY_FN(LAZY_MOSQUITTO, int, mosquitto_lib_version, (int *major, int *minor, int *revision),
	(major, minor, revision))
