/* Routes against messages: source matching, and the table of one
 * deployment's routes with one decision per sink. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/route_internal.h"

/* The next piece (n bytes) of the message's source path against the route's
 * source, ignoring case as edgeHub does (OrdinalIgnoreCase); *left is what
 * of the route is still to match, and a route that ends inside the piece
 * has matched. */
static bool source_step_unicode(const char **src, size_t *left, const char *piece, size_t n)
{
	size_t i, j;
	route_text_common_nocase(*src, *left, piece, n, &i, &j);
	if (i < *left && j < n)
		return false;
	*src += i;
	*left -= i;
	return true;
}

/* An ASCII piece needs no more than ASCII folding: no other character is an
 * ASCII one ignoring case. */
static inline bool source_step(const char **src, size_t *left, const char *piece, size_t n,
			       bool ascii)
{
	if (!ascii)
		return source_step_unicode(src, left, piece, n);
	size_t i = n < *left ? n : *left;
	if (strncasecmp(*src, piece, i) != 0)
		return false;
	*src += i;
	*left -= i;
	return true;
}

#define STEP(s) source_step(&src, &left, s, sizeof(s) - 1, true)

/* As edgeHub: the message's source is /messages/modules/<m>/outputs/<o>/
 * (or /messages/modules/<m>/ without an output, /messages/events/ for
 * device telemetry) and the route's source must be a prefix of it. */
bool route_source_matches(const struct route *r, const struct hub_message *m)
{
	const char *mod = m->sys[MSG_SYS_CONNECTION_MODULE_ID];
	const char *out = m->sys[MSG_SYS_OUTPUT_NAME];
	const char *src = r->source;
	size_t left = r->source_len;
	if (!mod || !*mod)
		return STEP("/messages/events/") && left == 0;
	size_t n = strlen(mod);
	if (!STEP("/messages/modules/") ||
	    !source_step(&src, &left, mod, n, route_ascii_prefix(mod, n) == n) || !STEP("/"))
		return false;
	if (out && *out) {
		n = strlen(out);
		if (!STEP("outputs/") ||
		    !source_step(&src, &left, out, n, route_ascii_prefix(out, n) == n) ||
		    !STEP("/"))
			return false;
	}
	return left == 0;
}

bool route_matches(const struct route *r, const struct hub_message *m)
{
	if (!route_source_matches(r, m))
		return false;
	if (r->root < 0)
		return true;
	struct route_eval_ctx c;
	route_eval_init(&c, m, r->queries, r->n_queries);
	bool ok = route_eval_condition(r, &c);
	route_eval_release(&c);
	return ok;
}

/* ---- tables ---- */

struct table_route {
	char *name;
	struct route *r;
	uint32_t priority;
	uint32_t ttl_secs;
	uint32_t sink_id;   /* routes with equal sinks share an id */
	uint16_t *slot_map; /* the route's $body queries among the table's */
};

struct route_table {
	struct table_route *routes;
	size_t n;
	uint32_t default_ttl;				   /* 0: unknown */
	struct body_query queries[ROUTE_BODY_QUERIES_MAX]; /* of all routes, each once */
	size_t n_queries;
};

/* Maps a route's $body queries onto the table's, adding the new ones. */
static int share_queries(struct route_table *t, struct table_route *e, struct berr *err)
{
	const struct route *r = e->r;
	if (!r->n_queries)
		return 0;
	e->slot_map = calloc(r->n_queries, sizeof(*e->slot_map));
	if (!e->slot_map)
		return berr_set(err, ENOMEM, "route \"%s\"", e->name);
	for (size_t q = 0; q < r->n_queries; q++) {
		const struct body_query *a = &r->queries[q];
		size_t k = 0;
		while (k < t->n_queries && !(t->queries[k].nseg == a->nseg &&
					     body_segs_equal(t->queries[k].segs, t->queries[k].pool,
							     a->segs, a->pool, a->nseg)))
			k++;
		if (k == t->n_queries) {
			if (k == ROUTE_BODY_QUERIES_MAX)
				return berr_set(
				    err, 0,
				    "route \"%s\": the routes use more than %d different "
				    "$body queries",
				    e->name, ROUTE_BODY_QUERIES_MAX);
			t->queries[t->n_queries++] = *a;
		}
		e->slot_map[q] = (uint16_t)k;
	}
	return 0;
}

static bool sink_equal(const struct route_sink *a, const struct route_sink *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == SINK_UPSTREAM)
		return true;
	return strcmp(a->module, b->module) == 0 && strcmp(a->input, b->input) == 0;
}

int route_table_build(const struct route_def *defs, size_t n, struct route_table **out,
		      struct berr *err)
{
	*out = NULL;
	if (n > ROUTE_TABLE_MAX)
		return berr_set(err, 0, "%zu routes is more than the limit of %d", n,
				ROUTE_TABLE_MAX);
	struct route_table *t = calloc(1, sizeof(*t));
	if (!t || !(t->routes = calloc(n ? n : 1, sizeof(*t->routes)))) {
		free(t);
		return berr_set(err, ENOMEM, "routes");
	}
	for (size_t i = 0; i < n; i++) {
		const struct route_def *d = &defs[i];
		struct table_route *e = &t->routes[i];
		const char *name = d->name ? d->name : "";
		if (!d->text) {
			berr_set(err, 0, "route \"%s\": no route text", name);
			goto fail;
		}
		if (d->priority > 9 && d->priority != ROUTE_DEFAULT_PRIORITY) {
			berr_set(err, 0, "route \"%s\": priority %u is not in 0-9", name,
				 d->priority);
			goto fail;
		}
		if (route_parse(d->text, &e->r, err) < 0) {
			berr_wrap(err, "route \"%s\"", name);
			goto fail;
		}
		t->n = i + 1;
		e->name = strdup(name);
		if (!e->name) {
			berr_set(err, ENOMEM, "route \"%s\"", name);
			goto fail;
		}
		if (share_queries(t, e, err) < 0)
			goto fail;
		e->priority = d->priority;
		e->ttl_secs = d->ttl_secs;
		e->sink_id = (uint32_t)i;
		for (size_t j = 0; j < i; j++)
			if (sink_equal(&t->routes[j].r->sink, &e->r->sink)) {
				e->sink_id = t->routes[j].sink_id;
				break;
			}
	}
	*out = t;
	return 0;
fail:
	route_table_free(t);
	return -1;
}

void route_table_free(struct route_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->routes[i].name);
		free(t->routes[i].slot_map);
		route_free(t->routes[i].r);
	}
	free(t->routes);
	free(t);
}

void route_table_set_default_ttl(struct route_table *t, uint32_t ttl_secs)
{
	t->default_ttl = ttl_secs;
}

/* A TTL for comparing: 0 is the store's default, which counts as the
 * longest when the table does not know it. */
static uint64_t ttl_rank(const struct route_table *t, uint32_t ttl)
{
	if (ttl)
		return ttl;
	return t->default_ttl ? t->default_ttl : UINT64_MAX;
}

size_t route_table_match(const struct route_table *t, const struct hub_message *m,
			 void (*fn)(const struct route_hit *hit, void *arg), void *arg)
{
	if (!t || !t->n)
		return 0;
	/* Per sink (indexed by the sink id, which is a route index): the route
	 * that decides the priority, and the TTL. */
	struct {
		int32_t route; /* -1: not reached */
		uint32_t priority;
		uint32_t ttl;
	} best[ROUTE_TABLE_MAX];
	uint32_t order[ROUTE_TABLE_MAX];
	size_t n_hits = 0;
	struct route_eval_ctx c;
	route_eval_init(&c, m, t->queries, t->n_queries);
	for (size_t i = 0; i < t->n; i++)
		best[i].route = -1;
	for (size_t i = 0; i < t->n; i++) {
		const struct table_route *e = &t->routes[i];
		if (!route_source_matches(e->r, m))
			continue;
		route_eval_select(&c, e->slot_map);
		if (!route_eval_condition(e->r, &c))
			continue;
		uint32_t s = e->sink_id;
		if (best[s].route < 0) {
			best[s].route = (int32_t)i;
			best[s].priority = e->priority;
			best[s].ttl = e->ttl_secs;
			order[n_hits++] = s;
			continue;
		}
		if (e->priority < best[s].priority) {
			best[s].route = (int32_t)i;
			best[s].priority = e->priority;
		}
		if (ttl_rank(t, e->ttl_secs) > ttl_rank(t, best[s].ttl))
			best[s].ttl = e->ttl_secs;
	}
	route_eval_release(&c);
	for (size_t k = 0; k < n_hits; k++) {
		const struct table_route *e = &t->routes[best[order[k]].route];
		struct route_hit hit = {.route_name = e->name,
					.sink = &e->r->sink,
					.priority = best[order[k]].priority,
					.ttl_secs = best[order[k]].ttl};
		if (fn)
			fn(&hit, arg);
	}
	return n_hits;
}
