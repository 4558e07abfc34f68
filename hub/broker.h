/* Private to hub/: the broker's state, shared by the files of the folder.
 *
 * One thread runs an epoll loop over non-blocking sockets. Each client has a
 * bounded input buffer (one packet up to max_packet) and a bounded output
 * buffer. A session (per client id) holds subscriptions, the QoS 1 messages
 * sent and not yet acknowledged, and the hub's own messages waiting to go
 * out; a persistent session outlives its connection. Routed messages wait in
 * the store until their module's session leases them. */
#ifndef BERTH_HUB_BROKER_H
#define BERTH_HUB_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/strbuf.h"
#include "hub/config.h"
#include "hub/message.h"
#include "hub/metrics.h"
#include "hub/mqtt_codec.h"
#include "hub/route.h"
#include "hub/store.h"
#include "hub/twin.h"

#define HUB_MAX_CONNECTIONS    1024
#define HUB_CONNECT_TIMEOUT_MS 10000
#define SESSION_WINDOW	       32  /* QoS 1 messages in flight per session */
#define SESSION_QUEUE_MAX      128 /* hub messages waiting per session */
#define SESSION_QUEUE_BYTES    (1024 * 1024)
#define SESSION_SUBS_MAX       64   /* subscriptions per session */
#define SUB_FILTER_MAX	       1024 /* bytes of one topic filter */
#define CLIENT_PENDING_ACKS    64   /* stored-but-unacknowledged PUBLISHes before reads pause */
#define CLIENT_WBUF_HIGH       (64 * 1024) /* delivery waits while more than this is unsent */
#define CLIENT_LABEL_MAX       192
#define CLIENT_REFUSALS_LOGGED 20 /* refused requests logged per connection; the rest at debug */
/* Input buffered by connections that have not been accepted yet, beyond a
 * small first buffer each: what anyone able to open the socket can make the
 * hub hold. */
#define HUB_PREAUTH_BUFFER_MAX (4 * 1024 * 1024)
#define METHOD_PAYLOAD_MAX     (128 * 1024)
#define CONTROL_REQUEST_MAX    (METHOD_PAYLOAD_MAX * 2 + 4096)

struct broker;

/* What an epoll event points at. */
struct hub_io {
	int fd;
	void (*on_event)(struct hub_io *io, uint32_t events);
};

/* A message of the hub's own (twin answer, desired patch, method call), or
 * a client's will until it is published. */
struct out_msg {
	struct out_msg *next;
	char *topic;
	uint8_t *payload;
	size_t len;
	uint8_t qos;
};

/* A QoS 1 PUBLISH sent to the client and not yet acknowledged: either a
 * store lease or one of the hub's own messages. */
struct inflight {
	struct inflight *next;
	uint16_t packet_id;
	char *endpoint; /* store lease, or NULL */
	uint64_t seq;
	uint32_t priority; /* of the route that chose the endpoint */
	const struct hub_message *msg;
	struct out_msg *own;
};

struct subscription {
	struct subscription *next;
	char *filter;
	uint8_t qos;
};

struct session {
	struct session *next;
	struct broker *b;
	char *client_id;
	char *module;
	bool persistent;
	bool discarded;	       /* waits to be freed at the end of the loop turn */
	struct client *client; /* NULL while disconnected */
	struct subscription *subs;
	size_t n_subs;
	struct inflight *inflight, **inflight_tail;
	size_t n_inflight;
	struct out_msg *queue, **queue_tail;
	size_t n_queued, queued_bytes;
	uint16_t last_packet_id;
};

/* A received QoS 1 PUBLISH whose PUBACK waits (PUBACKs go out in the order
 * the PUBLISHes came, as MQTT requires). */
struct pending_ack {
	struct pending_ack *next;
	struct client *client; /* NULL once the client is gone */
	uint16_t packet_id;
	bool done;
};

enum client_state { CLIENT_NEW, CLIENT_CONNECTED, CLIENT_CLOSED };

struct client {
	struct hub_io io;
	struct broker *b;
	struct client *next, *prev;
	uint64_t id;
	enum client_state state;
	bool tcp;
	pid_t pid; /* Unix-socket peer, else 0 */
	uid_t uid;
	int pidfd; /* the peer process until CONNECT is checked, or -1 */
	void *tls; /* SSL *, TCP with TLS only */
	bool tls_ready;
	bool tls_want_write;
	char label[CLIENT_LABEL_MAX]; /* for log lines: identity and peer */
	struct session *session;
	uint16_t keepalive;
	int64_t last_rx_mono;
	int64_t accepted_mono;
	struct out_msg *will;
	uint8_t *rbuf;
	size_t rlen, rcap;
	size_t preauth_counted; /* of rcap, in broker.preauth_bytes */
	struct strbuf wbuf;
	size_t woff; /* bytes of wbuf already written */
	bool close_after_flush;
	bool in_input;		  /* inside process_input() */
	bool send_queued;	  /* on broker.send_queue */
	struct client *send_next; /* on broker.send_queue */
	struct pending_ack *acks, **acks_tail;
	size_t n_acks;
	uint32_t events;   /* registered with epoll */
	unsigned refusals; /* requests refused without closing (client_log_refusal) */
};

struct module_twin {
	struct module_twin *next;
	char *module;
	struct twin *twin;
	bool dirty; /* changed since it was last saved */
	/* The twin cache (upstream_twin.c, with upstream.twins), saved beside
	 * the twin as <module>.cloud.json: */
	bool synced; /* the desired properties are the cloud's */
	char *base;  /* reported values the cloud has (JSON); NULL: {} */
};

struct method_call;
struct control_conn;
struct upstream;
struct gateway_listener;
struct gateway_http;

struct broker {
	const char *config_path;
	struct hub_config *cfg;
	struct route_table *routes;
	struct store *store;
	int epfd;
	int64_t now_ms;	 /* wall clock, Unix ms */
	int64_t mono_ms; /* monotonic, for timeouts */
	bool stop;
	int exit_code;	 /* 1: stopped because something failed (the store) */
	bool own_socket; /* created the Unix socket file (remove it on exit) */
	struct hub_io unix_listener, tcp_listener, control_listener, signals, store_events;
	void *tls_ctx;		   /* SSL_CTX * */
	struct client *clients;	   /* closed ones are freed at the end of a loop turn */
	struct client *send_queue; /* output to send at the end of the loop turn */
	size_t n_clients;
	size_t preauth_bytes; /* bounded by HUB_PREAUTH_BUFFER_MAX */
	uint64_t next_client_id;
	struct session *sessions;
	struct session *discarded; /* freed at the end of a loop turn */
	struct module_twin *twins;
	bool twins_dirty; /* some twin waits to be saved (twins_flush) */
	struct method_call *calls;
	struct control_conn *controls;
	uint64_t next_rid;
	int64_t next_expire_mono;
	bool accept_paused;	    /* out of descriptors: listeners rest until the next tick */
	int64_t next_full_log_mono; /* "too many connections" is logged once a second */
	size_t refused_full;	    /* connections refused since that line */
	struct upstream *upstream;  /* the cloud link (upstream.h), NULL when offline */
	/* The TLS gateway (gateway_listen.c, gateway_http.c). */
	struct gateway_listener *gateway_listeners;
	void *gateway_tls_ctx; /* SSL_CTX *, made at the first connection */
	struct gateway_http *gateway_http;
	size_t n_gateway_http;
	struct hub_metrics metrics;
};

/* loop.c */
NODISCARD int broker_init(struct broker *b, const char *config_path, int listen_fd,
			  struct berr *err);
int broker_run(struct broker *b);
void broker_fini(struct broker *b);
void broker_clock(struct broker *b);
NODISCARD int broker_watch(struct broker *b, struct hub_io *io, uint32_t events, struct berr *err);
void broker_unwatch(struct broker *b, struct hub_io *io);
NODISCARD int broker_reload(struct broker *b, struct berr *err);

/* listener.c */
NODISCARD int listener_open_unix(struct broker *b, int listen_fd, struct berr *err);
NODISCARD int listener_open_tcp(struct broker *b, struct berr *err);
/* accept() on a listener failed (errno): out of descriptors or memory, every
 * listener rests until the next tick, where listener_resume() watches them
 * again; other errors are logged. */
void listener_accept_failed(struct broker *b, const char *where);
void listener_resume(struct broker *b);
/* Raises the descriptor limit towards what HUB_MAX_CONNECTIONS needs. */
void listener_raise_fd_limit(void);
/* False (the fd closed, a line logged now and then) at HUB_MAX_CONNECTIONS. */
bool listener_room_for(struct broker *b, int fd, const char *peer);
/* A client on a TCP connection, with its TLS session (NULL: none), which
 * goes with the connection should the client not be made. */
void listener_add_tcp_client(struct broker *b, int fd, const char *peer, void *tls);
/* The next connection on a TCP listener, non-blocking, and its peer's
 * "address:port"; -1 when there is none now (listener_accept_failed()
 * has seen to the error, `where` naming the listener). */
int listener_accept_tcp(struct broker *b, struct hub_io *io, const char *where, char *peer,
			size_t cap);
/* "address:port" of a peer, for log lines. */
void listener_peer_name(const struct sockaddr_storage *sa, char *out, size_t cap);
/* A listening TCP socket on "host:port" or "[v6]:port" (non-blocking);
 * with freebind, an address this host does not have yet is bound too. */
NODISCARD int listener_tcp_socket(const char *addr, bool freebind, struct berr *err);

/* tls.c: the TCP listener's TLS, through libssl loaded on first use. */
NODISCARD int tls_server_init(const char *cert, const char *key, void **ctx, struct berr *err);
void tls_server_free(void *ctx);
void *tls_session_new(void *ctx, int fd, struct berr *err);
void tls_session_free(void *tls);
/* Sends close_notify, if it can go at once (the end of an answer). */
void tls_session_shutdown(void *tls);
/* 0 done, 1 in progress (*want_write says which way), -1 failed (err) */
NODISCARD int tls_handshake(void *tls, bool *want_write, struct berr *err);
/* > 0 bytes, 0 closed, -1 failed, -2 would block (*want_write: on output) */
ssize_t tls_read(void *tls, void *buf, size_t len, bool *want_write);
ssize_t tls_write(void *tls, const void *buf, size_t len, bool *want_write);

/* gateway_listen.c: the TLS gateway's MQTT and HTTPS listeners */
/* Listens on what the config lists and no more; a new certificate is
 * loaded at the next connection. */
void gateway_listen_sync(struct broker *b);
/* Binds again what could not be bound (every few seconds). */
void gateway_listen_tick(struct broker *b);
void gateway_listen_pause(struct broker *b, bool pause);
void gateway_listen_close(struct broker *b);
/* The gateway's SSL_CTX, made on first use; NULL with err. */
void *gateway_tls(struct broker *b, struct berr *err);

/* gateway_http.c: module-to-module direct methods over HTTPS */
void gateway_http_accept(struct broker *b, int fd, void *tls, const char *peer);
/* Closes connections past their deadline. */
void gateway_http_tick(struct broker *b);
void gateway_http_free_closed(struct broker *b);
void gateway_http_close_all(struct broker *b);

/* client.c */
struct client *client_new(struct broker *b, int fd, bool tcp, const char *peer);
/* Closes the connection (log line with reason at level), publishing the will
 * when will is true; the client is freed at the end of the loop turn. */
void client_close(struct client *c, int level, bool will, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends what the client's output buffer holds, as much as the socket takes. */
int client_send_flush(struct client *c);
/* The packets just put in the output buffer go at the end of the loop turn,
 * with whatever else the turn gives the client, in one send: a round of
 * PUBACKs or deliveries costs one system call and one wakeup of the peer,
 * not one each. Returns -1 when the client is closed. */
int client_send_soon(struct client *c);
/* The end of a loop turn: the queued output is sent. */
void clients_send_queued(struct broker *b);
size_t client_unsent(const struct client *c);
void client_update_events(struct client *c);
/* Reading may go on (PUBACKs went out, output drained). */
void client_resume(struct client *c);
/* Frees closed clients and discarded sessions. */
void client_free_dead(struct broker *b);
void client_set_identity(struct client *c, const char *client_id);
/* Logs a request refused without closing the connection (a SUBSCRIBE, a
 * twin request), prefixed with the client's label: at level for the first
 * CLIENT_REFUSALS_LOGGED on a connection, then at debug, so a client that
 * repeats one cannot flood the log. */
void client_log_refusal(struct client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The protocol steps. Each returns 0, or -1 after closing the client. */
int handle_connect(struct client *c, const struct mqtt_connect *p);
int handle_publish(struct client *c, const struct mqtt_publish *p);
int handle_puback(struct client *c, uint16_t packet_id);
int handle_subscribe(struct client *c, const struct mqtt_subscribe *s);
int handle_unsubscribe(struct client *c, const struct mqtt_subscribe *s);
int handle_pingreq(struct client *c);
int handle_disconnect(struct client *c);
/* $iothub/twin/... and $iothub/methods/res/... */
int handle_twin_request(struct client *c, const char *topic, const uint8_t *payload, size_t len);
int handle_method_response(struct client *c, const char *topic, const uint8_t *payload, size_t len);

/* send_*.c: packets to a client. -1 when the output buffer refused it. */
int send_connack(struct client *c, bool session_present, uint8_t code);
int send_puback(struct client *c, uint16_t packet_id);
int send_suback(struct client *c, uint16_t packet_id, const uint8_t *codes, size_t n);
int send_unsuback(struct client *c, uint16_t packet_id);
int send_pingresp(struct client *c);
int send_publish(struct client *c, const char *topic, const uint8_t *payload, size_t len,
		 uint8_t qos, uint16_t packet_id, bool dup);

/* auth.c: identity at CONNECT. Returns a CONNACK code; 0 fills module. */
uint8_t auth_check(struct client *c, const struct mqtt_connect *p, char *module, size_t cap);
/* Parses "<host>/<device>/<module>/?api-version=..." as edgeHub does. */
int auth_parse_username(const char *username, size_t len, char *device, char *module, size_t cap);

/* acl.c */
enum acl_publish {
	ACL_PUB_DENIED,
	ACL_PUB_TELEMETRY, /* devices/<d>/modules/<m>/messages/events[/<bag>] */
	ACL_PUB_TWIN,	   /* $iothub/twin/... */
	ACL_PUB_METHOD_RESPONSE,
};
/* On ACL_PUB_TELEMETRY, *bag points at the property bag (maybe empty). */
enum acl_publish acl_publish(const char *device, const char *module, const char *topic, size_t len,
			     const char **bag, size_t *bag_len);
bool acl_subscribe(const char *device, const char *module, const char *filter, size_t len);

/* session.c */
/* A copy of topic (topic_len bytes) and payload; NULL when memory ran out. */
struct out_msg *out_msg_new(const char *topic, size_t topic_len, const void *payload, size_t len,
			    uint8_t qos);
void out_msg_free(struct out_msg *m);
struct session *session_find(struct broker *b, const char *client_id);
struct session *session_new(struct broker *b, const char *client_id, const char *module,
			    bool persistent);
/* Gives back what the session leased and frees it. */
void session_free(struct session *s);
/* Takes the session out of use; it is freed at the end of the loop turn
 * (code up the stack may still hold it). Idempotent. */
void session_discard(struct session *s);
void session_detach(struct session *s);
/* The best QoS granted for topic, or -1 when no subscription matches. */
int session_granted_qos(const struct session *s, const char *topic, size_t len);
/* Queues one of the hub's own messages when a subscription matches (at most
 * at qos); returns 0 queued, 1 no subscription, -1 over the bound. */
int session_enqueue(struct session *s, const char *topic, const void *payload, size_t len,
		    uint8_t qos);
/* Sends what can go now: queued messages, then leased store messages, up
 * to the window. */
void session_pump(struct session *s);
/* Sends unacknowledged messages again with DUP set (persistent reconnect). */
void session_resend(struct session *s);
uint16_t session_next_packet_id(struct session *s);
/* The client acknowledged packet_id: forget it (and acknowledge it to the
 * store). False when no such message is in flight. */
bool session_acknowledge(struct session *s, uint16_t packet_id);
void session_pump_module(struct broker *b, const char *module);
/* Persistent sessions (and their subscriptions) as saved in
 * <state_dir>/sessions.json: restored at start for identities still
 * deployed; saved, atomically, whenever one is made, changed or ended. */
NODISCARD int sessions_load(struct broker *b, struct berr *err);
int sessions_save(struct broker *b);

/* routing.c: telemetry from an identity through the routes into the store.
 * ack (may be NULL) is completed once the store owns the message. */
NODISCARD int routing_submit(struct broker *b, const char *module, const char *bag, size_t bag_len,
			     const uint8_t *body, size_t body_len, struct pending_ack *ack,
			     struct berr *err);
/* The topic a message stored for endpoint "/modules/<m>/inputs/<i>" is
 * delivered on. */
int routing_input_topic(struct broker *b, const char *endpoint, const struct hub_message *m,
			struct strbuf *out);
/* Every queued PUBACK whose message is stored goes out, in order. */
void pending_acks_flush(struct client *c);
struct pending_ack *pending_ack_new(struct client *c, uint16_t packet_id);

/* twins.c: one twin per configured module, persisted under state_dir. */
NODISCARD int twins_sync(struct broker *b, bool notify, struct berr *err);
struct twin *twins_get(struct broker *b, const char *module);
/* The module's twin changed: it is saved by the next twins_flush(). */
void twins_changed(struct broker *b, const char *module);
/* Saves every changed twin once (called at the end of each loop turn, so a
 * burst of patches costs one write per twin, not one per patch). */
void twins_flush(struct broker *b);
struct module_twin *twins_find(struct broker *b, const char *module);
/* Sends a desired-properties patch to the module's session, if it has one. */
void twins_send_desired(struct broker *b, const char *module, struct twin *t, const char *patch);
/* Whether the twins are the cloud's (upstream.twins with an upstream). */
bool twins_from_cloud(const struct broker *b);
void twins_free(struct broker *b);

/* methods.c */
/* Who waits for a direct method's answer: done() is called once, with the
 * module's status and its answer as JSON text, or with an error status
 * (404 not deployed, not connected or not subscribed; 504 no answer in
 * time; ...) and a message. It may be called before methods_call()
 * returns. */
struct method_waiter {
	void (*done)(void *ctx, int status, const char *payload_json, const char *error);
	void *ctx;
};
void methods_call(struct broker *b, const char *module, const char *method, yajl_val payload,
		  long long timeout_ms, struct method_waiter w);
struct control_conn;
/* {"op":"invoke",...} from the control socket. */
void methods_invoke(struct broker *b, struct control_conn *cc, yajl_val req);
void methods_expire(struct broker *b);
/* The waiter with this ctx is gone: its calls are dropped. */
void methods_forget(struct broker *b, void *ctx);
void methods_free(struct broker *b);

/* control.c */
NODISCARD int control_open(struct broker *b, struct berr *err);
/* Answers a control request and closes it after the write. */
void control_reply(struct control_conn *cc, const char *json);
void control_close_all(struct broker *b);

#endif
