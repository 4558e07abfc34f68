/* Private to agent/: Docker's Healthcheck, from an image's config and from createOptions:
 *   {"Test": ["CMD", "prog", "arg"] | ["CMD-SHELL", "command"] | ["NONE"],
 *    "Interval": ns, "Timeout": ns, "StartPeriod": ns, "StartInterval": ns,
 *    "Retries": n}
 * Durations are nanoseconds, 0 or at least 1 ms (Docker's rule); 0 or an
 * absent field takes the image's value, then Docker's default (30 s, 30 s,
 * 0 s, 5 s, 3 retries). An empty Test takes the image's; ["NONE"] turns the
 * image's check off. */
#ifndef BERTH_AGENT_HEALTHCHECK_H
#define BERTH_AGENT_HEALTHCHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "agent/jpath.h"
#include "common/err.h"
#include "shim/shim.h"

#define HEALTHCHECK_TEST_MAX 256 /* entries of Test */

struct healthcheck {
	bool given;
	char **test; /* NULL: not given (the image's applies) */
	int64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns;
	int64_t retries;
};

/* Parses v (an object) found at path. */
NODISCARD int healthcheck_parse(yajl_val v, const struct jpath *path, struct healthcheck *out,
				struct berr *err);
/* The same from JSON text (an image config's Healthcheck). */
NODISCARD int healthcheck_parse_text(const char *json, const char *what, struct healthcheck *out,
				     struct berr *err);
void healthcheck_clear(struct healthcheck *h);

/* The module's check over the image's (either may be NULL), as the shim
 * runs it: out->test NULL when there is none or it is turned off. */
NODISCARD int healthcheck_resolve(const struct healthcheck *module, const struct healthcheck *image,
				  struct instance_health *out, struct berr *err);

#endif
