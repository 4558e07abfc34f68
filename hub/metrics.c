#include "hub/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/prom.h"
#include "hub/broker.h"
#include "hub/upstream_conn.h"

struct hub_series {
	uint64_t value;
	uint64_t hash;
	uint8_t metric;
	size_t len;    /* of labels */
	char labels[]; /* the values, each NUL-terminated */
};

static const struct {
	const char *name, *help, *labels;
} counters[] = {
#define HUB_COUNTER_DEF(id, name, help, labels) {name, help, labels},
    HUB_COUNTERS(HUB_COUNTER_DEF)
#undef HUB_COUNTER_DEF
};

#define SLOTS (2 * HUB_SERIES_MAX)

/* The hash is seeded per process: label values come from modules (output
 * names), which must not be able to pick values that collide. */
static uint64_t seed;

static size_t label_count(enum hub_counter c)
{
	size_t n = 1;
	for (const char *p = counters[c].labels; *p; p++)
		n += *p == ',';
	return n;
}

int hub_metrics_init(struct hub_metrics *m)
{
	memset(m, 0, sizeof(*m));
	unsigned char r[24];
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t t =
		    (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)i;
	}
	memcpy(&seed, r + 16, sizeof(seed));
	r[6] = (r[6] & 0x0f) | 0x40; /* a version 4 UUID, as edgeHub's Guid */
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(m->instance_number, sizeof(m->instance_number),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
		 r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
		 r[15]);
	m->slots = calloc(SLOTS, sizeof(*m->slots));
	return m->slots ? 0 : -1;
}

void hub_metrics_fini(struct hub_metrics *m)
{
	for (size_t i = 0; m->slots && i < SLOTS; i++)
		free(m->slots[i]);
	free(m->slots);
	m->slots = NULL;
}

void hub_metrics_add(struct hub_metrics *m, enum hub_counter c, uint64_t v,
		     const char *const *values)
{
	if (!m->slots)
		return;
	size_t nl = label_count(c), len = 0, lens[HUB_METRIC_LABELS_MAX];
	uint64_t h = fnv1a(FNV1A_INIT ^ seed, &c, sizeof(c));
	for (size_t i = 0; i < nl && i < HUB_METRIC_LABELS_MAX; i++) {
		const char *s = values[i] ? values[i] : "";
		lens[i] = strnlen(s, HUB_LABEL_VALUE_MAX);
		h = fnv1a(h, s, lens[i] + 1);
		len += lens[i] + 1;
	}
	for (size_t probe = 0; probe < SLOTS; probe++) {
		size_t at = (h + probe) % SLOTS;
		struct hub_series *s = m->slots[at];
		if (s && s->hash == h && s->metric == c && s->len == len) {
			const char *p = s->labels;
			bool same = true;
			for (size_t i = 0; i < nl && same; i++) {
				const char *want = values[i] ? values[i] : "";
				same = !strncmp(p, want, lens[i]) && p[lens[i]] == '\0';
				p += lens[i] + 1;
			}
			if (same) {
				s->value += v;
				return;
			}
			continue;
		}
		if (s)
			continue;
		if (m->n >= HUB_SERIES_MAX)
			break;
		s = malloc(sizeof(*s) + len);
		if (!s)
			break;
		s->value = v;
		s->hash = h;
		s->metric = (uint8_t)c;
		s->len = len;
		char *p = s->labels;
		for (size_t i = 0; i < nl; i++) {
			memcpy(p, values[i] ? values[i] : "", lens[i]);
			p[lens[i]] = '\0';
			p += lens[i] + 1;
		}
		m->slots[at] = s;
		m->n++;
		return;
	}
	m->overflow += v;
}

void hub_metrics_sent(struct broker *b, const char *endpoint, const struct hub_message *msg,
		      uint32_t priority)
{
	char to[STORE_ENDPOINT_MAX], prio[16];
	const char *input = "";
	if (!strncmp(endpoint, STORE_UPSTREAM, strlen(STORE_UPSTREAM))) {
		snprintf(to, sizeof(to), "%s", STORE_UPSTREAM);
	} else {
		const char *mid = strstr(endpoint, "/inputs/");
		if (strncmp(endpoint, "/modules/", 9) || !mid)
			return;
		snprintf(to, sizeof(to), "%.*s", (int)(mid - endpoint - 9), endpoint + 9);
		input = mid + 8;
	}
	snprintf(prio, sizeof(prio), "%u", (unsigned)priority);
	HUB_COUNT(b, SENT, msg ? msg->sys[MSG_SYS_CONNECTION_MODULE_ID] : "", to,
		  msg ? msg->sys[MSG_SYS_OUTPUT_NAME] : "", input, prio);
}

/* --- rendering --- */

/* A series with the labels every one has, as edgeHub's: iothub,
 * edge_device, instance_number. */
struct labels {
	struct prom_label l[HUB_METRIC_LABELS_MAX + 3];
	size_t n;
};

static int series(struct broker *b, struct strbuf *out, const char *name, struct labels *l,
		  double value)
{
	struct prom_label *common = l->l + l->n;
	common[0] = (struct prom_label){"iothub", b->cfg->hostname, NULL};
	common[1] = (struct prom_label){"edge_device", b->cfg->device_id, NULL};
	common[2] = (struct prom_label){"instance_number", b->metrics.instance_number, NULL};
	return prom_series(out, name, l->l, l->n + 3, value);
}

static int render_counter(struct broker *b, enum hub_counter c, struct strbuf *out)
{
	if (prom_head(out, counters[c].name, "counter", counters[c].help) < 0)
		return -1;
	char names[128], device[HUB_LABEL_VALUE_MAX];
	snprintf(names, sizeof(names), "%s", counters[c].labels);
	snprintf(device, sizeof(device), "%s/", b->cfg->device_id);
	struct labels l = {.n = 0};
	bool identity[HUB_METRIC_LABELS_MAX];
	for (char *save = NULL, *t = strtok_r(names, ",", &save); t && l.n < HUB_METRIC_LABELS_MAX;
	     t = strtok_r(NULL, ",", &save)) {
		identity[l.n] = *t == '@';
		l.l[l.n++].name = *t == '@' ? t + 1 : t;
	}
	for (size_t i = 0; i < SLOTS; i++) {
		struct hub_series *s = b->metrics.slots ? b->metrics.slots[i] : NULL;
		if (!s || s->metric != c)
			continue;
		const char *p = s->labels;
		for (size_t k = 0; k < l.n; k++) {
			l.l[k].value = p;
			/* "$upstream" is no module of this device. */
			l.l[k].prefix = identity[k] && *p != '$' ? device : NULL;
			p += strlen(p) + 1;
		}
		if (series(b, out, counters[c].name, &l, (double)s->value) < 0)
			return -1;
	}
	return 0;
}

/* Per endpoint, from struct store_stats (`st`) at `now` (wall clock, ms):
 * one line each. Endpoints are named as edgeHub names them: "iothub" for
 * the upstream (the sum of its identities' queues), "<device>/<module>/<input>"
 * for a module's input. */
#define STORE_ENDPOINT_METRICS(X)                                                                  \
	X(queue_length, "edgehub_queue_length", "gauge",                                           \
	  "Current length of edgeHub's queue for a given priority", st->messages)                  \
	X(queue_leased, "berth_hub_queue_in_flight", "gauge",                                      \
	  "Messages of the queue sent and not yet acknowledged", st->leased)                       \
	X(queue_age, "berth_hub_queue_oldest_age_seconds", "gauge",                                \
	  "Age of the oldest message the queue holds (0 when empty)",                              \
	  st->oldest_ms &&now > st->oldest_ms ? (now - st->oldest_ms) / 1000.0 : 0)

/* The whole hub (`b`): one line each. */
#define HUB_GAUGES(X)                                                                              \
	X(connected, "edgehub_connected_clients", "gauge",                                         \
	  "Current number of connected clients to edge hub", connected_clients(b))                 \
	X(store_bytes, "berth_hub_store_bytes", "gauge", "Bytes of messages the store holds",      \
	  store_bytes(b->store))                                                                   \
	X(store_max, "berth_hub_store_max_bytes", "gauge",                                         \
	  "The store's bound (hub.max_store_bytes)", b->cfg->store_max_bytes)                      \
	X(series_overflow, "berth_hub_metric_increments_dropped_total", "counter",                 \
	  "Counter increments not kept because the hub holds 2048 label sets already",             \
	  b->metrics.overflow)

static double connected_clients(struct broker *b)
{
	double n = 0;
	for (struct client *c = b->clients; c; c = c->next)
		n += c->state == CLIENT_CONNECTED;
	return n;
}

struct metric_def {
	const char *name, *type, *help;
};

#define ENDPOINT_GETTER(id, name, type, help, expr)                                                \
	static double endpoint_##id(const struct store_stats *st, int64_t now)                     \
	{                                                                                          \
		return (double)(expr);                                                             \
	}
STORE_ENDPOINT_METRICS(ENDPOINT_GETTER)
#define ENDPOINT_ENTRY(id, name, type, help, expr) {{name, type, help}, endpoint_##id},
static const struct {
	struct metric_def def;
	double (*get)(const struct store_stats *st, int64_t now);
} endpoint_metrics[] = {STORE_ENDPOINT_METRICS(ENDPOINT_ENTRY)};

#define HUB_GETTER(id, name, type, help, expr)                                                     \
	static double hub_##id(struct broker *b)                                                   \
	{                                                                                          \
		return (double)(expr);                                                             \
	}
HUB_GAUGES(HUB_GETTER)
#define HUB_ENTRY(id, name, type, help, expr) {{name, type, help}, hub_##id},
static const struct {
	struct metric_def def;
	double (*get)(struct broker *b);
} hub_gauges[] = {HUB_GAUGES(HUB_ENTRY)};

struct endpoint_walk {
	struct broker *b;
	struct strbuf *out;
	size_t metric;
	int rc;
	struct store_stats up; /* the upstream's queues, summed */
	bool any_up;
};

static void endpoint_line(struct endpoint_walk *w, const char *name, const struct store_stats *st)
{
	struct labels l = {.l = {{"endpoint", name, NULL}}, .n = 1};
	if (w->rc == 0)
		w->rc = series(w->b, w->out, endpoint_metrics[w->metric].def.name, &l,
			       endpoint_metrics[w->metric].get(st, w->b->now_ms));
}

static void endpoint_series(const struct store_stats *st, void *arg)
{
	struct endpoint_walk *w = arg;
	if (!strncmp(st->endpoint, STORE_UPSTREAM, strlen(STORE_UPSTREAM))) {
		w->any_up = true;
		w->up.messages += st->messages;
		w->up.leased += st->leased;
		if (st->oldest_ms && (!w->up.oldest_ms || st->oldest_ms < w->up.oldest_ms))
			w->up.oldest_ms = st->oldest_ms;
		return;
	}
	char name[STORE_ENDPOINT_MAX + 200];
	const char *input = strstr(st->endpoint, "/inputs/");
	if (!strncmp(st->endpoint, "/modules/", 9) && input)
		snprintf(name, sizeof(name), "%s/%.*s/%s", w->b->cfg->device_id,
			 (int)(input - st->endpoint - 9), st->endpoint + 9, input + 8);
	else
		snprintf(name, sizeof(name), "%s", st->endpoint);
	endpoint_line(w, name, st);
}

/* The cloud link: one line per identity with a connection (1 while it is
 * connected), and how many the link has in each state. Nothing offline. */
static int render_upstream(struct broker *b, struct strbuf *out)
{
	struct upstream *up = b->upstream;
	if (!up)
		return 0;
	char device[HUB_LABEL_VALUE_MAX];
	snprintf(device, sizeof(device), "%s/", b->cfg->device_id);
	if (prom_head(out, "berth_hub_upstream_connected", "gauge",
		      "1 while the identity's connection to the upstream is up, 0 while it "
		      "waits, resolves or connects") < 0)
		return -1;
	size_t n = 0, connected = 0;
	for (struct upconn *c = up->conns; c; c = c->next) {
		bool is_up = c->state == UPC_CONNECTED || c->state == UPC_RENEWING;
		n++;
		connected += is_up;
		struct labels l = {.l = {{"id", c->module, device}}, .n = 1};
		if (series(b, out, "berth_hub_upstream_connected", &l, is_up) < 0)
			return -1;
	}
	struct upstream_counts total = up->gone;
	for (struct upconn *c = up->conns; c; c = c->next) {
		total.sent += c->counts.sent;
		total.acked += c->counts.acked;
		total.resent += c->counts.resent;
	}
	struct labels none = {.n = 0};
	const struct {
		const char *name, *type, *help;
		double value;
	} link[] = {
	    {"berth_hub_upstream_up", "gauge",
	     "1 when every identity with messages for the upstream is connected (or none has any)",
	     connected == n},
	    {"berth_hub_upstream_sent_total", "counter", "Messages sent upstream, resends included",
	     (double)total.sent},
	    {"berth_hub_upstream_acknowledged_total", "counter",
	     "Messages the upstream acknowledged", (double)total.acked},
	    {"berth_hub_upstream_resent_total", "counter",
	     "Messages sent upstream again after a connection was lost", (double)total.resent},
	    {"berth_hub_upstream_network_changes_total", "counter",
	     "Address or route changes that made the link retry at once",
	     (double)up->network_changes},
	};
	for (size_t i = 0; i < ARRAY_SIZE(link); i++)
		if (prom_head(out, link[i].name, link[i].type, link[i].help) < 0 ||
		    series(b, out, link[i].name, &none, link[i].value) < 0)
			return -1;
	return 0;
}

int hub_metrics_render(struct broker *b, struct strbuf *out)
{
	for (int c = 0; c < HM_COUNT; c++)
		if (render_counter(b, (enum hub_counter)c, out) < 0)
			return -1;
	struct labels none = {.n = 0};
	for (size_t i = 0; i < ARRAY_SIZE(hub_gauges); i++)
		if (prom_head(out, hub_gauges[i].def.name, hub_gauges[i].def.type,
			      hub_gauges[i].def.help) < 0 ||
		    series(b, out, hub_gauges[i].def.name, &none, hub_gauges[i].get(b)) < 0)
			return -1;
	for (size_t i = 0; i < ARRAY_SIZE(endpoint_metrics); i++) {
		struct endpoint_walk w = {.b = b, .out = out, .metric = i};
		if (prom_head(out, endpoint_metrics[i].def.name, endpoint_metrics[i].def.type,
			      endpoint_metrics[i].def.help) < 0)
			return -1;
		store_foreach(b->store, endpoint_series, &w);
		if (w.any_up)
			endpoint_line(&w, "iothub", &w.up);
		if (w.rc < 0)
			return -1;
	}
	return render_upstream(b, out);
}
