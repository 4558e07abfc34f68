/* Private to hub/: the hub's metrics, as the daemon's metrics_listen serves them (Prometheus
 * text format 0.0.4), with edgeHub's names, help texts and labels where
 * edgeHub has the metric, and every series labelled iothub, edge_device and
 * instance_number (a GUID of this hub process) as edgeHub's are.
 *
 * Counters are incremented where the event happens, into a table of series
 * (metric and label values) that the hub alone touches: a scrape (the
 * control socket's "metrics") reads it in the same single thread, no lock.
 * Gauges are read from the broker's state when a scrape renders them.
 *
 * Adding a counter is one line in HUB_COUNTERS and a HUB_COUNT() where it
 * happens; a store or upstream figure is one line in the tables of
 * metrics.c. */
#ifndef BERTH_HUB_METRICS_H
#define BERTH_HUB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"

#define HUB_METRICS_TEXT_MAX  (4 * 1024 * 1024)
#define HUB_SERIES_MAX	      2048 /* distinct label sets; more are counted in one series */
#define HUB_LABEL_VALUE_MAX   256  /* bytes of a label value kept */
#define HUB_METRIC_LABELS_MAX 5

/* id, name, help, labels (comma-separated; "@" marks an identity: the value
 * is a module name, shown as "<device>/<module>" as edgeHub shows ids, or
 * "$upstream"). */
#define HUB_COUNTERS(X)                                                                            \
	X(RECEIVED, "edgehub_messages_received_total",                                             \
	  "Total number of messages received from clients", "route_output,@id")                    \
	X(SENT, "edgehub_messages_sent_total",                                                     \
	  "Total number of messages sent to clients or upstream",                                  \
	  "@from,@to,from_route_output,to_route_input,priority")                                   \
	X(DROPPED, "edgehub_messages_dropped_total",                                               \
	  "Total number of messages removed because of reason", "reason,@from,from_route_output")  \
	X(CONNECT_SUCCESS, "edgehub_client_connect_success_total",                                 \
	  "Total number of times individual client successfully connect to edgeHub", "@id")        \
	X(CONNECT_FAILED, "edgehub_client_connect_failed_total",                                   \
	  "Total number of times individual client failed to connect to edgeHub", "@id,reason")    \
	X(DISCONNECT, "edgehub_client_disconnect_total",                                           \
	  "Total number of times individual client disconnected from edgeHub", "@id")              \
	X(DIRECT_METHODS, "edgehub_direct_methods_total", "Total number of direct messages sent",  \
	  "@from,@to")

enum hub_counter {
#define HUB_COUNTER_ID(id, name, help, labels) HM_##id,
	HUB_COUNTERS(HUB_COUNTER_ID)
#undef HUB_COUNTER_ID
	    HM_COUNT
};

struct hub_series;

struct hub_metrics {
	struct hub_series **slots; /* open addressing, 2 * HUB_SERIES_MAX */
	size_t n;
	uint64_t overflow; /* increments of series that found no room */
	char instance_number[37];
};

struct broker;

int hub_metrics_init(struct hub_metrics *m);
void hub_metrics_fini(struct hub_metrics *m);
/* Adds v to the series of counter c with these label values (as many as
 * its table line names; NULL counts as ""). */
void hub_metrics_add(struct hub_metrics *m, enum hub_counter c, uint64_t v,
		     const char *const *values);
#define HUB_METRICS_ADD(m, id, ...)                                                                \
	hub_metrics_add(m, HM_##id, 1, (const char *const[]){__VA_ARGS__})
#define HUB_COUNT(b, id, ...) HUB_METRICS_ADD(&(b)->metrics, id, __VA_ARGS__)

struct hub_message;
/* A message leased from endpoint was delivered (acknowledged by its module
 * at QoS 1, sent at QoS 0): edgehub_messages_sent_total. */
void hub_metrics_sent(struct broker *b, const char *endpoint, const struct hub_message *msg,
		      uint32_t priority);

/* Every metric of the hub, in the text format. */
int hub_metrics_render(struct broker *b, struct strbuf *out);

#endif
