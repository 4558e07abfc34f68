#include "common/version.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif
#ifndef BERTH_REVISION
#define BERTH_REVISION "unknown"
#endif

const char berth_version[] = BERTH_VERSION;
const char berth_revision[] = BERTH_REVISION;
