/* The edgeHub route language:
 *   FROM <source> [WHERE <condition>] INTO <sink>
 * compiled once per deployment and evaluated against each message. */
#ifndef BERTH_HUB_ROUTE_H
#define BERTH_HUB_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "hub/message.h"

#define ROUTE_TEXT_MAX	       4096
#define ROUTE_TABLE_MAX	       256	   /* routes in one deployment */
#define ROUTE_DEFAULT_PRIORITY 2000000000u /* edgeHub's default: below 0-9 */

enum route_sink_kind { SINK_UPSTREAM, SINK_MODULE_INPUT };

struct route_sink {
	enum route_sink_kind kind;
	char *module; /* SINK_MODULE_INPUT only */
	char *input;
};

struct route;

/* Parses one route. On error, err reads "position N: <what was expected>"
 * (N counted from 1, in characters of text), or says that the text is
 * longer than ROUTE_TEXT_MAX. */
NODISCARD int route_parse(const char *text, struct route **out, struct berr *err);
void route_free(struct route *r);

/* Does the message come from this route's source (the sending module and its
 * output name are the message's $connectionModuleId and $outputName; a
 * message with no module is device telemetry)? */
bool route_source_matches(const struct route *r, const struct hub_message *m);
/* Source matches and the condition (if any) evaluates to true. */
bool route_matches(const struct route *r, const struct hub_message *m);
const struct route_sink *route_get_sink(const struct route *r);

/* All routes of one deployment. */
struct route_table;

struct route_def {
	const char *name;
	const char *text;
	uint32_t priority; /* 0-9, or ROUTE_DEFAULT_PRIORITY */
	uint32_t ttl_secs; /* 0: the store's default */
};

/* Compiles every route; the error names the route and the position. */
NODISCARD int route_table_build(const struct route_def *defs, size_t n, struct route_table **out,
				struct berr *err);
void route_table_free(struct route_table *t);

struct route_hit {
	const char *route_name;
	const struct route_sink *sink;
	uint32_t priority;
	uint32_t ttl_secs;
};

/* Calls fn for each matching route, in table order; the same sink reached by
 * two routes is delivered once (with the best priority and longest TTL).
 * Returns the number of hits. */
size_t route_table_match(const struct route_table *t, const struct hub_message *m,
			 void (*fn)(const struct route_hit *hit, void *arg), void *arg);

/* The store's default TTL, so that a route without one (ttl_secs 0) can be
 * weighed against routes with one when they reach the same sink. Until it
 * is set, 0 counts as the longest. Hits still report 0 for the default. */
void route_table_set_default_ttl(struct route_table *t, uint32_t ttl_secs);

#endif
