/* Private to hub/: the parts of the cloud link (hub/upstream*.c, netwatch.c):
 * upstream.c the set of connections and what the hub sees of them,
 * upstream_conn.c one identity's connection, upstream_tls.c the client TLS
 * context, upstream_resolve.c the host name lookup, netwatch.c the kernel's
 * address and route changes. */
#ifndef BERTH_HUB_UPSTREAM_CONN_H
#define BERTH_HUB_UPSTREAM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/url.h"
#include "hub/broker.h"
#include "hub/upstream.h"

#define UPSTREAM_ERROR_MAX	 256
#define UPSTREAM_CONNECT_MS	 30000 /* TCP, TLS and CONNACK */
#define UPSTREAM_RENEW_DRAIN_MS	 10000 /* in-flight messages get this long before a renewal */
#define UPSTREAM_REFUSAL_MS	 10000 /* a close this soon after a message may be its refusal */
#define UPSTREAM_RESOLVED_FOR_MS 300000
#define UPSTREAM_ADDR_MAX	 64
#define UPTWIN_RID_MAX		 24
/* What the messages in flight on one connection may take (libmosquitto
 * holds a copy of each until its PUBACK): the window is also bounded in
 * bytes, one message always allowed. */
#define UPSTREAM_INFLIGHT_BYTES (1024 * 1024)

enum upconn_state {
	UPC_WAIT,	/* backing off until next_attempt_mono */
	UPC_BLOCKED,	/* no key, or the identity is not ready upstream */
	UPC_RESOLVING,	/* waiting for the host name */
	UPC_CONNECTING, /* TCP/TLS/CONNECT sent, no CONNACK yet */
	UPC_CONNECTED,
	UPC_RENEWING, /* connected, letting in-flight messages finish before a new token */
};

struct upinflight {
	int mid; /* 0: free slot */
	uint64_t seq;
	size_t bytes;
	const struct hub_message *msg; /* leased: valid until acknowledged */
	uint32_t priority;
};

struct upstream_counts {
	uint64_t sent, acked, resent, refused, expired;
};

struct upconn {
	struct upconn *next;
	struct upstream *up;
	char *module;
	char endpoint[STORE_ENDPOINT_MAX];
	enum upconn_state state;
	struct mosquitto *mosq;
	struct hub_io io; /* the socket, while mosq has one */
	uint32_t events;
	int64_t next_attempt_mono;
	int64_t attempt_mono; /* when the current attempt started */
	int64_t renew_mono;   /* connected: when to renew the token */
	int64_t renew_deadline_mono;
	int64_t last_activity_mono;
	unsigned failures;			   /* attempts in a row that failed */
	size_t backlog_seen;			   /* messages its endpoint held at the last scan */
	int64_t connected_since_ms, down_since_ms; /* wall clock; 0: never */
	char last_error[UPSTREAM_ERROR_MAX];
	/* What libmosquitto reported from inside a call (acted on after it). */
	int connack; /* -1: none yet */
	bool lost;
	int lost_rc;
	bool want_pump;
	char lib_error[UPSTREAM_ERROR_MAX]; /* libmosquitto's last error line */
	/* In flight, mosquitto message id -> store sequence. */
	struct upinflight *inflight;
	size_t cap; /* slots: the window when the connection was made */
	size_t n_inflight;
	size_t inflight_bytes;
	/* After a connection closed with messages in flight, they go one at a
	 * time (probe_left of them) to find one the upstream refuses. */
	size_t probe_left;
	int64_t probe_sent_mono; /* when the last message went */
	bool peer_closed;	 /* the upstream closed the connection (not a timeout) */
	uint64_t suspect_seq;
	unsigned suspect_strikes;
	struct upstream_counts counts;
	/* The twin cache and methods (upstream_twin.c), with upstream.twins. */
	bool twin_got;			/* the twin was read on this connection */
	uint64_t twin_rid;		/* the last request id used */
	char get_rid[UPTWIN_RID_MAX];	/* a GET waiting for its answer; "": none */
	char patch_rid[UPTWIN_RID_MAX]; /* a reported patch waiting for its answer */
	char *patch_values;		/* the reported values that patch makes the cloud's */
	int64_t get_mono, patch_mono;	/* when they went */
	int64_t twin_retry_mono;	/* after a refusal for now: not before */
};

struct upstream_resolver;

struct upstream {
	struct broker *b;
	struct url url;
	char url_text[URL_MAX + 1];
	void *ssl_ctx; /* SSL_CTX *, mqtts:// only */
	struct upconn *conns;
	/* The host's address, for names (an address is used as it is). */
	char addr[UPSTREAM_ADDR_MAX];
	int64_t addr_mono;		    /* when it was resolved; 0: not yet */
	struct upstream_resolver *resolver; /* a lookup under way, or NULL */
	char resolve_error[UPSTREAM_ERROR_MAX];
	struct hub_io netwatch;
	int64_t next_scan_mono;
	bool lib_ready;
	struct upstream_counts gone; /* counts of connections since closed */
	uint64_t network_changes;
};

/* upstream.c: p is freed (by release) at the end of the loop turn, so an
 * event of this turn that still points at it finds it closed, not freed. */
void upstream_bury(void *p, void (*release)(void *));

/* upstream_conn.c */
struct upconn *upconn_new(struct upstream *up, const char *module);
void upconn_free(struct upconn *c);
/* Attempts, renewals, keepalives: called every tick and after events. */
void upconn_step(struct upconn *c);
/* Sends what fits in the window. */
void upconn_pump(struct upconn *c);
/* The connection goes down now (config change, shutdown); in-flight
 * messages go back to the store. */
void upconn_close(struct upconn *c, const char *why);
/* An attempt waiting for its backoff starts at once. */
void upconn_retry_now(struct upconn *c);
const char *upconn_state_name(enum upconn_state s);
/* The module's key and readiness from the current config, or NULL. */
const struct hub_module *upconn_identity(struct upconn *c);

/* upstream.c: the connection of an identity, or NULL. */
struct upconn *upstream_conn_find(struct upstream *up, const char *module);

/* upstream_twin.c: the twin cache and the cloud's direct methods. */
/* Subscribes to the twin and method topics and reads the twin. */
void uptwin_connected(struct upconn *c);
/* The connection is gone: requests under way are forgotten. */
void uptwin_reset(struct upconn *c);
/* Sends what is due: the GET, or the reported properties the cloud lacks. */
void uptwin_step(struct upconn *c);
/* A message from the upstream on a twin or method topic. */
void uptwin_message(struct upconn *c, const char *topic, const void *payload, size_t len);
/* The cloud's method calls still waiting are dropped (hub stopping). */
void uptwin_forget_calls(struct broker *b);

/* upstream_tls.c: a client context trusting the system CAs and ca_file,
 * checking the certificate against host, and sending host as SNI. */
NODISCARD int upstream_tls_ctx(const char *host, const char *ca_file, void **ctx, struct berr *err);
void upstream_tls_free(void *ctx);
/* Why the last handshake refused the server's certificate, if it did
 * (then forgotten). */
void upstream_tls_take_error(char *out, size_t cap);

/* upstream_resolve.c: looks host up in a helper thread; when it is done,
 * upstream_resolved() runs on the hub's loop with the address or an error. */
NODISCARD int upstream_resolve_start(struct upstream *up, struct berr *err);
void upstream_resolve_cancel(struct upstream *up);
void upstream_resolved(struct upstream *up, const char *addr, const char *error);

/* netwatch.c: a NETLINK_ROUTE socket reporting new addresses and default
 * routes; upstream_network_changed() runs for each batch that has one. */
NODISCARD int netwatch_open(struct upstream *up, struct berr *err);
void netwatch_close(struct upstream *up);
void upstream_network_changed(struct upstream *up, const char *what);
/* Parses a batch of netlink messages: 1 (and what, a short description)
 * when an address or a default route appeared, 0 when not, -1 when the
 * batch is malformed. */
int netwatch_parse(const void *buf, size_t len, char *what, size_t cap);

#endif
