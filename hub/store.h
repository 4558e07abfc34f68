/* Private to hub/: the hub's message store: one queue per endpoint, where an endpoint is a
 * route sink named as a path: "$upstream" or "/modules/<m>/inputs/<i>".
 *
 * The broker only ever talks to this interface. Behind it is a durable log
 * (store_log.c, format in store_record.h, reference in docs/STORE.md):
 *
 *  - store_append() takes a message and the endpoints its routes chose, and
 *    completes ASYNCHRONOUSLY: the callback runs later from store_dispatch(),
 *    never from inside store_append(). Status 0 means the message is on
 *    stable storage, and only then does the broker send the sender's PUBACK.
 *    Appends are written at the end of each round of the event loop, and a
 *    sync thread's fdatasync covers every one written while the previous
 *    sync ran (group commit). Status -1: it is not stored (a write or sync
 *    failed; the store reopened from what is on disk).
 *  - Completions are signalled on store_event_fd() (readable when some are
 *    ready), which the hub's event loop watches.
 *  - Consumers lease messages (store_lease), then acknowledge them
 *    (store_ack: the message is gone from that endpoint) or give them back
 *    (store_release: it will be leased again, marked as a redelivery).
 *    Leases are not durable: after a restart every unacknowledged message is
 *    leased again. Acknowledgements are written to the log as they come (a
 *    killed hub loses none) and synced with the next append (a power cut
 *    may bring back the last ones).
 *  - Within an endpoint, messages are leased best priority first (0 highest,
 *    ROUTE_DEFAULT_PRIORITY last), oldest first within a priority.
 *  - Every message carries its time to live per endpoint (the route's
 *    timeToLiveSecs, else the default), counted in wall-clock time from its
 *    arrival; expired messages are never leased and store_expire() drops
 *    them.
 *  - Limits: max_bytes and a floor of free space on the device. When one
 *    is reached, STORE_FULL_REJECT holds appends back (they complete when
 *    space returns; beyond STORE_WAIT_MAX bytes waiting they are refused)
 *    and STORE_FULL_DROP_OLDEST removes the oldest messages. Nothing
 *    acknowledged to a sender is dropped under REJECT.
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

enum store_full_policy { STORE_FULL_REJECT, STORE_FULL_DROP_OLDEST };

struct store_options {
	const char *dir;	   /* the log's directory, created when missing */
	size_t max_bytes;	   /* bound on the log's bytes; 0: only the free-space floor */
	uint32_t default_ttl_secs; /* for targets with ttl_secs 0 */
	unsigned min_free_percent; /* of the device, left free */
	enum store_full_policy full;
	size_t segment_bytes; /* 0: the default (16 MiB, at most max_bytes / 8) */
};

/* One endpoint a message goes to, with what its route decided. */
struct store_target {
	const char *endpoint;
	uint32_t priority; /* 0-9, or ROUTE_DEFAULT_PRIORITY */
	uint32_t ttl_secs; /* 0: the default */
};

/* status 0: on stable storage; -1: not stored (err says why). */
typedef void (*store_append_cb)(void *arg, int status, const struct berr *err);
/* Messages for endpoint can be leased (they are written; their senders'
 * completions follow once they are synced). */
typedef void (*store_ready_cb)(void *arg, const char *endpoint);

/* Opens (or creates) the log in opt->dir: scans it, verifies every record,
 * cuts a torn tail, skips damaged records, and refuses a log of an unknown
 * version or a directory it cannot create, lock, read or write. */
NODISCARD int store_open(const struct store_options *opt, struct store **out, struct berr *err);
/* Writes and syncs what waits (no callbacks run), then frees everything. */
void store_close(struct store *s);

int store_event_fd(struct store *s);
/* Runs the completions that are ready, and writes what waits. */
void store_dispatch(struct store *s);
/* cb runs from store_dispatch() when messages become available to lease:
 * a message is written (and leased) before it is synced, so a receiver need
 * not wait for the sync; only the sender's completion does. */
void store_set_ready_cb(struct store *s, store_ready_cb cb, void *arg);
/* -1 with err when the store can no longer be used (it failed to reopen
 * after a write error): the hub stops. */
NODISCARD int store_error(const struct store *s, struct berr *err);

/* New limits (a reloaded config); appends waiting for space are looked at
 * again. */
void store_set_limits(struct store *s, size_t max_bytes, unsigned min_free_percent,
		      enum store_full_policy full, uint32_t default_ttl_secs);

/* Stores m (its enqueued_ms says when it was accepted) once for all targets.
 * Returns 0 when taken (cb follows), or -1 with err when refused at once
 * (bad endpoint name, message too large, too much waiting for space); cb is
 * then never called. */
NODISCARD int store_append(struct store *s, const struct hub_message *m,
			   const struct store_target *targets, size_t n, store_append_cb cb,
			   void *arg, struct berr *err);

struct store_item {
	const char *endpoint;	       /* valid while the store is open */
	uint64_t seq;		       /* unique within the endpoint, increasing */
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
 * or released), removes segments nothing live is left in, and admits
 * appends that waited for space if there is some now; returns how many
 * messages it dropped. Call it often (every tick): it costs little. */
size_t store_expire(struct store *s, int64_t now_ms);

struct store_stats {
	const char *endpoint;
	size_t messages; /* held, including leased */
	size_t leased;
	uint64_t bytes;	       /* of the records holding them */
	int64_t oldest_ms;     /* arrival of the oldest held, 0 when none */
	uint64_t expired;      /* since the hub started */
	uint64_t dropped_full; /* by drop-oldest */
	uint64_t dropped_damaged;
};
void store_foreach(struct store *s, void (*fn)(const struct store_stats *st, void *arg), void *arg);
size_t store_bytes(const struct store *s);

struct store_totals {
	uint64_t bytes;	      /* of the log's files */
	uint64_t max_bytes;   /* 0: no bound */
	uint64_t free_bytes;  /* on the device */
	uint64_t floor_bytes; /* what min_free_percent keeps free */
	uint64_t segments;
	bool full;	       /* appends wait for space */
	uint64_t held_back;    /* appends that had to wait for space */
	uint64_t refused;      /* appends refused: too much waiting */
	uint64_t dropped_full; /* messages removed by drop-oldest */
	uint64_t commits;      /* batches written */
	uint64_t syncs;	       /* of which synced */
	uint64_t write_errors; /* failed writes or syncs (each reopened the store) */
	uint64_t damaged;      /* records skipped at open */
	uint64_t cut_bytes;    /* torn tail bytes cut at open */
	uint64_t opened_ms;    /* how long the last open took */
	uint64_t recovered;    /* messages found held at open */
};
void store_get_totals(struct store *s, struct store_totals *t);

const char *store_full_policy_name(enum store_full_policy p);

#endif
