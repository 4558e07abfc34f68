/* Private to agent/: metrics_listen: the device's metrics in Prometheus' text format (0.0.4)
 * over HTTP, `GET /metrics`, as edgeAgent and edgeHub serve theirs on port
 * 9600: edgeAgent's metrics from the daemon (modules, their cgroups, the
 * host), edgeHub's from the hub, which renders its own over its control
 * socket when asked (hub/metrics.h). A scrape waits for the hub without
 * holding up the daemon, and builds its answer in one buffer freed once it
 * is sent: scrapes leave the daemon's memory as it was. */
#ifndef BERTH_AGENT_METRICS_H
#define BERTH_AGENT_METRICS_H

#include <stdint.h>

#include "common/err.h"

#define METRICS_REQUEST_MAX  4096 /* request line and headers (common/http.h parses them) */
#define METRICS_CLIENTS_MAX  4
#define METRICS_REQUEST_MS   5000
#define METRICS_HUB_MS	     2000 /* the hub's part, or the scrape goes on without it */
#define METRICS_RESPONSE_MAX (8 * 1024 * 1024)

struct daemon;

NODISCARD int metrics_listen(struct daemon *d, struct berr *err);
void metrics_accept(struct daemon *d);
/* A scraper's connection has input. */
void metrics_client_ready(struct daemon *d, int fd);
/* The hub's answer to a scrape has arrived (or ended). */
void metrics_hub_ready(struct daemon *d, int fd);
/* Closes what is past its deadline; the next deadline (boot clock). */
int64_t metrics_sweep(struct daemon *d, int64_t now);

#endif
