/* The cloud link as the hub sees it: which identities have a connection,
 * when they are made and dropped, and what `berth queues`, `list` and
 * `check` show of them. One connection per identity (upstream_conn.c). */
#include "hub/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "common/json.h"
#include "common/lazy.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "hub/propbag.h"
#include "hub/upstream_conn.h"

#define SCAN_EVERY_MS 2000

struct grave {
	struct grave *next;
	void *p;
	void (*release)(void *);
};

static struct grave *graves;

void upstream_bury(void *p, void (*release)(void *))
{
	struct grave *g = malloc(sizeof(*g));
	if (!g) {
		/* Rare enough to leak rather than risk a use after free. */
		log_error("upstream: out of memory; a closed connection is not freed");
		return;
	}
	*g = (struct grave){graves, p, release};
	graves = g;
}

void upstream_free_dead(void)
{
	while (graves) {
		struct grave *g = graves;
		graves = g->next;
		g->release(g->p);
		free(g);
	}
}

int upstream_endpoint(const char *module, char *out, size_t cap)
{
	int n = snprintf(out, cap, UPSTREAM_ENDPOINT_PREFIX "%s", module);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int upstream_topic(const char *device, const char *module, const struct hub_message *m,
		   struct strbuf *out)
{
	/* IoT Hub sets the connection's device and module ids itself and
	 * keeps these system properties of a device-to-cloud message. */
	unsigned keep = 1u << MSG_SYS_MESSAGE_ID | 1u << MSG_SYS_CORRELATION_ID |
			1u << MSG_SYS_CONTENT_TYPE | 1u << MSG_SYS_CONTENT_ENCODING |
			1u << MSG_SYS_OUTPUT_NAME;
	if (strbuf_printf(out, "devices/%s/modules/%s/messages/events/", device, module) < 0)
		return -1;
	return propbag_write(m, ~keep, out);
}

int64_t upstream_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned failures, double r)
{
	int64_t base = min_ms;
	for (unsigned i = 1; i < failures && base < max_ms; i++)
		base *= 2;
	if (base > max_ms)
		base = max_ms;
	if (r < 0)
		r = 0;
	if (r > 1)
		r = 1;
	int64_t delay = base - (int64_t)((double)base / 4 * r);
	return delay < min_ms ? min_ms : delay;
}

/* libmosquitto (and libssl for TLS) are mapped only once a connection is
 * wanted: a hub with an upstream but nothing to send does not load them. */
static int upstream_load(struct upstream *up, struct berr *err)
{
	if (up->lib_ready)
		return 0;
	if (lazy_require(LAZY_MOSQUITTO, err) < 0)
		return -1;
	LAZY(mosquitto_lib_init)();
	if (up->url.tls) {
		if (lazy_require(LAZY_SSL, err) < 0 || lazy_require(LAZY_CRYPTO, err) < 0)
			return -1;
		const char *ca = up->b->cfg->upstream.ca_file;
		if (upstream_tls_ctx(up->url.host, ca, &up->ssl_ctx, err) < 0)
			return -1;
	}
	up->lib_ready = true;
	return 0;
}

struct upconn *upstream_conn_find(struct upstream *up, const char *module)
{
	for (struct upconn *c = up->conns; c; c = c->next)
		if (!strcmp(c->module, module))
			return c;
	return NULL;
}

static struct upconn *conn_get(struct upstream *up, const char *module)
{
	struct upconn *c = upstream_conn_find(up, module);
	if (c)
		return c;
	struct berr err;
	if (upstream_load(up, &err) < 0) {
		snprintf(up->resolve_error, sizeof(up->resolve_error), "%s", err.msg);
		log_error("upstream: %s; messages stay in the store", err.msg);
		return NULL;
	}
	c = upconn_new(up, module);
	if (!c)
		return NULL;
	c->next = up->conns;
	up->conns = c;
	log_debug("upstream %s: has messages to send", module);
	return c;
}

static void conn_remove(struct upstream *up, struct upconn *c, const char *why)
{
	struct upconn **cp = &up->conns;
	while (*cp && *cp != c)
		cp = &(*cp)->next;
	if (*cp)
		*cp = c->next;
	if (c->state == UPC_CONNECTED)
		log_info("upstream %s: closing: %s", c->module, why);
	upconn_close(c, why);
	up->gone.sent += c->counts.sent;
	up->gone.acked += c->counts.acked;
	up->gone.resent += c->counts.resent;
	up->gone.refused += c->counts.refused;
	up->gone.expired += c->counts.expired;
	upconn_free(c);
}

static void upstream_release(void *p)
{
	struct upstream *up = p;
	upstream_tls_free(up->ssl_ctx);
	free(up);
}

struct scan {
	struct upstream *up;
	bool create;
};

/* Identities with messages get a connection; connections whose identity
 * has had nothing for idle_secs (or nothing at all while down) close. */
static void scan_endpoint(const struct store_stats *st, void *arg)
{
	struct scan *s = arg;
	size_t plen = strlen(UPSTREAM_ENDPOINT_PREFIX);
	if (strncmp(st->endpoint, UPSTREAM_ENDPOINT_PREFIX, plen))
		return;
	const char *module = st->endpoint + plen;
	struct upconn *c = upstream_conn_find(s->up, module);
	if (!c && st->messages && s->create)
		c = conn_get(s->up, module);
	if (c)
		c->backlog_seen = st->messages;
}

static void upstream_scan(struct upstream *up)
{
	struct broker *b = up->b;
	for (struct upconn *c = up->conns; c; c = c->next)
		c->backlog_seen = 0;
	struct scan s = {up, true};
	store_foreach(b->store, scan_endpoint, &s);
	/* With the twins upstream, every identity stays connected. */
	bool twins = b->cfg->upstream.twins;
	for (size_t i = 0; twins && i < b->cfg->n_modules; i++)
		conn_get(up, b->cfg->modules[i].name);
	struct upconn *next;
	for (struct upconn *c = up->conns; c; c = next) {
		next = c->next;
		if (c->backlog_seen || c->n_inflight || (twins && upconn_identity(c)))
			continue;
		bool up_now = c->state == UPC_CONNECTED || c->state == UPC_RENEWING;
		int64_t idle = b->mono_ms - c->last_activity_mono;
		if (!up_now || idle > (int64_t)b->cfg->upstream.idle_secs * 1000)
			conn_remove(up, c, "nothing to send");
	}
	up->next_scan_mono = b->mono_ms + SCAN_EVERY_MS;
}

int upstream_init(struct broker *b, struct berr *err)
{
	if (!b->cfg->upstream.url)
		return 0;
	struct upstream *up = calloc(1, sizeof(*up));
	if (!up)
		return berr_set(err, ENOMEM, "upstream");
	up->b = b;
	up->netwatch.fd = -1;
	if (url_parse(b->cfg->upstream.url, 1u << URL_MQTT | 1u << URL_MQTTS, &up->url, err) < 0) {
		free(up);
		return berr_wrap(err, "config.upstream.url");
	}
	snprintf(up->url_text, sizeof(up->url_text), "%s", b->cfg->upstream.url);
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) < 0)
		seed ^= (unsigned)b->mono_ms;
	srandom(seed);
	b->upstream = up;
	if (netwatch_open(up, err) < 0)
		log_warn("upstream: %s; reconnects wait for their backoff after a network change",
			 err->msg);
	log_info("upstream: %s, for the identities that have messages", up->url_text);
	upstream_scan(up);
	return 0;
}

void upstream_fini(struct broker *b)
{
	struct upstream *up = b->upstream;
	if (!up)
		return;
	uptwin_forget_calls(b);
	while (up->conns)
		conn_remove(up, up->conns, "hub stopping");
	upstream_resolve_cancel(up);
	netwatch_close(up);
	upstream_bury(up, upstream_release);
	b->upstream = NULL;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

void upstream_reload(struct broker *b, const struct hub_config *old)
{
	const struct hub_upstream_config *now = &b->cfg->upstream, *was = &old->upstream;
	if (!same_str(now->url, was->url) || !same_str(now->ca_file, was->ca_file) ||
	    now->window != was->window || now->twins != was->twins) {
		upstream_fini(b);
		struct berr err;
		if (upstream_init(b, &err) < 0)
			log_error("upstream: %s; offline until the config is fixed", err.msg);
		return;
	}
	struct upstream *up = b->upstream;
	if (!up)
		return;
	bool device_changed =
	    strcmp(old->device_id, b->cfg->device_id) || strcmp(old->hostname, b->cfg->hostname);
	up->next_scan_mono = 0; /* identities new in the config connect now */
	for (struct upconn *c = up->conns; c; c = c->next) {
		const struct hub_module *m = hub_config_module(b->cfg, c->module);
		const struct hub_module *w = hub_config_module(old, c->module);
		bool key_changed = !m || !w || strcmp(m->key, w->key) || device_changed;
		if (key_changed && c->state != UPC_WAIT && c->state != UPC_BLOCKED)
			upconn_close(c, "its identity changed");
		if (m && m->identity_ready && (key_changed || !w->identity_ready))
			upconn_retry_now(c);
	}
}

void upstream_notify(struct broker *b, const char *module)
{
	struct upstream *up = b->upstream;
	if (!up)
		return;
	struct upconn *c = conn_get(up, module);
	if (c && c->state == UPC_CONNECTED)
		upconn_pump(c);
	else if (c && c->state == UPC_WAIT && c->next_attempt_mono <= b->mono_ms)
		upconn_step(c);
}

void upstream_tick(struct broker *b)
{
	struct upstream *up = b->upstream;
	if (!up)
		return;
	if (b->mono_ms >= up->next_scan_mono)
		upstream_scan(up);
	for (struct upconn *c = up->conns; c; c = c->next) {
		upconn_step(c);
		if (c->state == UPC_CONNECTED)
			upconn_pump(c);
		if (b->cfg->upstream.twins)
			uptwin_step(c);
	}
}

void upstream_resolved(struct upstream *up, const char *addr, const char *error)
{
	if (addr) {
		snprintf(up->addr, sizeof(up->addr), "%s", addr);
		up->addr_mono = up->b->mono_ms;
		up->resolve_error[0] = '\0';
		log_debug("upstream: %s is %s", up->url.host, addr);
	} else {
		up->addr[0] = '\0';
		snprintf(up->resolve_error, sizeof(up->resolve_error), "%s", error);
	}
	for (struct upconn *c = up->conns; c; c = c->next)
		if (c->state == UPC_RESOLVING)
			upconn_step(c);
}

void upstream_network_changed(struct upstream *up, const char *what)
{
	up->network_changes++;
	up->addr[0] = '\0'; /* the name may resolve differently now */
	bool any = false;
	for (struct upconn *c = up->conns; c; c = c->next) {
		if (c->state == UPC_WAIT) {
			upconn_retry_now(c);
			upconn_step(c);
			any = true;
		}
	}
	log_msg(any ? LOG_LVL_INFO : LOG_LVL_DEBUG, "upstream: network change (%s)%s", what,
		any ? ": reconnecting now" : "");
}

/* ---- status ---------------------------------------------------------- */

struct backlog {
	const char *module; /* NULL: every identity */
	long long messages, leased;
	uint64_t bytes, expired, dropped_full, dropped_damaged;
	int64_t oldest_ms;
	size_t endpoints;
};

static void sum_backlog(const struct store_stats *st, void *arg)
{
	struct backlog *bl = arg;
	size_t plen = strlen(UPSTREAM_ENDPOINT_PREFIX);
	if (strncmp(st->endpoint, UPSTREAM_ENDPOINT_PREFIX, plen) ||
	    (bl->module && strcmp(st->endpoint + plen, bl->module)))
		return;
	bl->endpoints++;
	bl->messages += (long long)st->messages;
	bl->leased += (long long)st->leased;
	bl->bytes += st->bytes;
	bl->expired += st->expired;
	bl->dropped_full += st->dropped_full;
	bl->dropped_damaged += st->dropped_damaged;
	if (st->oldest_ms && (!bl->oldest_ms || st->oldest_ms < bl->oldest_ms))
		bl->oldest_ms = st->oldest_ms;
}

static void gen_backlog(yajl_gen g, struct broker *b, const struct backlog *bl)
{
	json_gen_key_int(g, "backlog", bl->messages);
	json_gen_key_int(g, "in_flight", bl->leased);
	if (bl->oldest_ms) {
		json_gen_key_int(g, "oldest_ms", bl->oldest_ms);
		long long age = (b->now_ms - bl->oldest_ms) / 1000;
		json_gen_key_int(g, "oldest_age_secs", age < 0 ? 0 : age);
	}
}

static void gen_counts(yajl_gen g, const struct upstream_counts *n)
{
	json_gen_key_int(g, "sent", (long long)n->sent);
	json_gen_key_int(g, "acked", (long long)n->acked);
	json_gen_key_int(g, "resent", (long long)n->resent);
	json_gen_key_int(g, "refused", (long long)n->refused);
	json_gen_key_int(g, "expired_in_flight", (long long)n->expired);
}

bool upstream_queue_stats(struct broker *b, struct store_stats *sum)
{
	struct backlog bl = {0};
	store_foreach(b->store, sum_backlog, &bl);
	*sum = (struct store_stats){.endpoint = "$upstream",
				    .messages = (size_t)bl.messages,
				    .leased = (size_t)bl.leased,
				    .bytes = bl.bytes,
				    .oldest_ms = bl.oldest_ms,
				    .expired = bl.expired,
				    .dropped_full = bl.dropped_full,
				    .dropped_damaged = bl.dropped_damaged};
	return bl.endpoints > 0;
}

void upstream_gen_status(struct broker *b, yajl_gen g)
{
	struct upstream *up = b->upstream;
	if (!up)
		return;
	struct upstream_counts total = up->gone;
	size_t n = 0, connected = 0;
	int64_t since_up = 0, since_down = 0;
	const char *error = up->resolve_error[0] ? up->resolve_error : NULL;
	for (struct upconn *c = up->conns; c; c = c->next) {
		n++;
		total.sent += c->counts.sent;
		total.acked += c->counts.acked;
		total.resent += c->counts.resent;
		total.refused += c->counts.refused;
		total.expired += c->counts.expired;
		if (c->state == UPC_CONNECTED || c->state == UPC_RENEWING) {
			connected++;
			if (!since_up || c->connected_since_ms < since_up)
				since_up = c->connected_since_ms;
		} else {
			if (c->down_since_ms && (!since_down || c->down_since_ms < since_down))
				since_down = c->down_since_ms;
			if (c->last_error[0])
				error = c->last_error;
		}
	}
	json_gen_str(g, "upstream");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "url", up->url_text);
	const char *state = n == 0	     ? "idle"
			    : connected == n ? "connected"
			    : connected	     ? "partly connected"
					     : "disconnected";
	json_gen_key_str(g, "state", state);
	json_gen_key_int(g, "connections", (long long)n);
	json_gen_key_int(g, "connected", (long long)connected);
	if (connected == n && since_up)
		json_gen_key_int(g, "connected_since_ms", since_up);
	if (connected < n && since_down)
		json_gen_key_int(g, "disconnected_since_ms", since_down);
	if (connected < n && error)
		json_gen_key_str(g, "last_error", error);
	struct backlog all = {0};
	store_foreach(b->store, sum_backlog, &all);
	gen_backlog(g, b, &all);
	gen_counts(g, &total);
	json_gen_key_int(g, "network_changes", (long long)up->network_changes);
	json_gen_str(g, "identities");
	yajl_gen_map_open(g);
	for (struct upconn *c = up->conns; c; c = c->next) {
		json_gen_str(g, c->module);
		yajl_gen_map_open(g);
		json_gen_key_str(g, "state", upconn_state_name(c->state));
		if (c->connected_since_ms)
			json_gen_key_int(g, "connected_since_ms", c->connected_since_ms);
		if (c->down_since_ms)
			json_gen_key_int(g, "disconnected_since_ms", c->down_since_ms);
		if (c->last_error[0] && c->state != UPC_CONNECTED)
			json_gen_key_str(g, "last_error", c->last_error);
		if (c->state == UPC_WAIT)
			json_gen_key_int(g, "retry_in_ms",
					 c->next_attempt_mono > b->mono_ms
					     ? (long long)(c->next_attempt_mono - b->mono_ms)
					     : 0);
		struct backlog one = {.module = c->module};
		store_foreach(b->store, sum_backlog, &one);
		gen_backlog(g, b, &one);
		gen_counts(g, &c->counts);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}
