/* Prometheus' text exposition format (0.0.4), as the daemon and the hub
 * write their metrics: "# HELP", "# TYPE", then one line per series,
 *   name{label="value",...} 12345 */
#ifndef BERTH_PROM_H
#define BERTH_PROM_H

#include <stddef.h>

#include "common/strbuf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_label {
	const char *name;
	const char *value;  /* escaped as the format requires (\\, \", \n) */
	const char *prefix; /* written before a non-empty value, or NULL */
};

int prom_head(struct strbuf *out, const char *name, const char *type, const char *help);
int prom_series(struct strbuf *out, const char *name, const struct prom_label *labels, size_t n,
		double value);

#endif
