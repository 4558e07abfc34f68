/* Private to hub/: the hub's message store: one queue per endpoint, where an endpoint is a
 * route sink named as a path: "$upstream" or "/modules/<m>/inputs/<i>".
 *
 * The broker only ever talks to this interface, so the in-memory store
 * behind it now (store_mem.c) can be replaced by a durable log (group
 * committed, checksummed, on disk) without touching the broker:
 *
 *  - store_append() takes a message and the endpoints its routes chose, and
 *    completes ASYNCHRONOUSLY: the callback runs later from store_dispatch(),
 *    never from inside store_append(). Status 0 means the store owns the
 *    message (a durable store: it is on disk), and only then does the broker
 *    send the sender's PUBACK. A durable store can gather many appends into
 *    one write and one fsync and complete them together.
 *  - Completions are signalled on store_event_fd() (readable when some are
 *    ready), which the hub's event loop watches; a durable store's writer
 *    thread makes it readable when a commit finishes.
 *  - Consumers lease messages (store_lease), then acknowledge them
 *    (store_ack: the message is gone from that endpoint) or give them back
 *    (store_release: it will be leased again, marked as a redelivery).
 *    Leases are not durable: after a restart every unacknowledged message is
 *    leased again. A durable store keeps one cursor per endpoint (everything
 *    up to it acknowledged) plus the acknowledged sequence numbers above it.
 *  - Within an endpoint, messages are leased best priority first (0 highest,
 *    ROUTE_DEFAULT_PRIORITY last), oldest first within a priority.
 *  - Every message carries its time to live per endpoint (the route's
 *    timeToLiveSecs, else the default); expired messages are never leased
 *    and store_expire() drops them.
 *  - The store is bounded (max_bytes); an append over the bound is refused
 *    with an error, never by dropping what was acknowledged before.
 *
 * All calls are made from the hub's single event-loop thread. */
#ifndef BERTH_HUB_STORE_H
#define BERTH_HUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "hub/message.h"

#define STORE_UPSTREAM	   "$upstream"
#define STORE_ENDPOINT_MAX 512

struct store;

struct store_options {
	const char *dir;	   /* where a durable store keeps its log; unused in memory */
	size_t max_bytes;	   /* bound on message bytes held */
	uint32_t default_ttl_secs; /* for targets with ttl_secs 0 */
};

/* One endpoint a message goes to, with what its route decided. */
struct store_target {
	const char *endpoint;
	uint32_t priority; /* 0-9, or ROUTE_DEFAULT_PRIORITY */
	uint32_t ttl_secs; /* 0: the default */
};

/* status 0: owned; -1: not stored (err says why). */
typedef void (*store_append_cb)(void *arg, int status, const struct berr *err);

int store_open(const struct store_options *opt, struct store **out, struct berr *err);
void store_close(struct store *s);

int store_event_fd(struct store *s);
/* Runs the completions that are ready. */
void store_dispatch(struct store *s);

/* Stores a copy of m (its enqueued_ms says when it was accepted) for every
 * target. Returns 0 when taken (cb follows), or -1 with err when refused at
 * once (full, bad endpoint name); cb is then never called. */
int store_append(struct store *s, const struct hub_message *m, const struct store_target *targets,
		 size_t n, store_append_cb cb, void *arg, struct berr *err);

struct store_item {
	const char *endpoint;	       /* valid while the store is open */
	uint64_t seq;		       /* unique in the store, increasing */
	const struct hub_message *msg; /* valid until acknowledged or released */
	uint32_t priority;
	int64_t expires_ms;
	bool redelivery; /* it was leased before and given back */
};

/* Leases the next message among the endpoints whose name starts with prefix
 * (one endpoint, or e.g. all inputs of one module) and that accept (when
 * not NULL) takes: best priority, then oldest. Returns 0 with *item, or 1
 * when there is none. */
int store_lease(struct store *s, const char *prefix,
		bool (*accept)(const char *endpoint, void *arg), void *arg, int64_t now_ms,
		struct store_item *item);
void store_ack(struct store *s, const char *endpoint, uint64_t seq);
void store_release(struct store *s, const char *endpoint, uint64_t seq);

/* Drops messages whose time to live ran out (leased ones when acknowledged
 * or released); returns how many it dropped. */
size_t store_expire(struct store *s, int64_t now_ms);

struct store_stats {
	const char *endpoint;
	size_t messages; /* held, including leased */
	size_t leased;
	int64_t oldest_ms; /* enqueued_ms of the oldest message held; 0: none */
};
void store_foreach(struct store *s, void (*fn)(const struct store_stats *st, void *arg), void *arg);
size_t store_bytes(const struct store *s);

#endif
